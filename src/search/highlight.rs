//! Highlighted snippets, built here rather than by FTS5's `snippet()` or PostgreSQL's
//! `ts_headline()`: the database finds and ranks the texts, this marks the words. One
//! implementation gives the same snippet on both backends, marks exactly the words the index
//! matched (PostgreSQL's parser would see `ann@example.com` as one token and not mark `ann`, though
//! the normalized index found it), and escapes by construction: the text is HTML-escaped piece by
//! piece and only our own `<em>`/`</em>` are added.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::query::Phrase;

/// Words shown in a snippet of a long text.
pub const SNIPPET_WORDS: usize = 24;
/// Words shown before the first match when the text is cut.
const CONTEXT_WORDS: usize = 4;
/// Marks text left out at either end of a snippet.
const ELLIPSIS: &str = "…";

static FOLD: LazyLock<HashMap<char, char>> = LazyLock::new(|| {
    migration::FOLD_FROM
        .chars()
        .zip(migration::FOLD_TO.chars())
        .collect()
});

/// A word as the index compares it: lower case, Latin diacritics folded.
pub fn normalize(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(|c| FOLD.get(&c).copied().unwrap_or(c))
        .collect()
}

/// The phrases to mark, normalized.
pub struct Matcher {
    phrases: Vec<(Vec<String>, bool)>,
}

impl Matcher {
    /// A matcher of these phrases.
    pub fn new<'a>(phrases: impl IntoIterator<Item = &'a Phrase>) -> Self {
        Self {
            phrases: phrases
                .into_iter()
                .map(|p| (p.words.iter().map(|w| normalize(w)).collect(), p.prefix))
                .collect(),
        }
    }

    fn marks(&self, tokens: &[Token]) -> Vec<bool> {
        let mut marked = vec![false; tokens.len()];
        for (words, prefix) in &self.phrases {
            let n = words.len();
            if n == 0 || n > tokens.len() {
                continue;
            }
            for start in 0..=tokens.len() - n {
                let hit = words.iter().enumerate().all(|(j, word)| {
                    let token = &tokens[start + j].normalized;
                    if j == n - 1 && *prefix {
                        token.starts_with(word.as_str())
                    } else {
                        token == word
                    }
                });
                if hit {
                    marked[start..start + n].iter_mut().for_each(|m| *m = true);
                }
            }
        }
        marked
    }
}

struct Token {
    start: usize,
    end: usize,
    normalized: String,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                tokens.push(Token {
                    start: s,
                    end: i,
                    normalized: normalize(&text[s..i]),
                });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        tokens.push(Token {
            start: s,
            end: text.len(),
            normalized: normalize(&text[s..]),
        });
    }
    tokens
}

/// Appends `text` HTML-escaped, with every run of whitespace as one space.
fn push_escaped(out: &mut String, text: &str) {
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    if space {
        out.push(' ');
    }
}

/// A snippet of `text`: all of it when it has at most [`SNIPPET_WORDS`] words, else the window of
/// that many words with the most matches (a few words of context before the first), with `…`
/// where text is left out. Matched words are wrapped in `<em>`…`</em>`; everything else is
/// HTML-escaped, and whitespace is collapsed.
pub fn snippet(text: &str, matcher: &Matcher) -> String {
    let tokens = tokens(text);
    let marks = matcher.marks(&tokens);
    let n = tokens.len();
    let (first, last) = if n <= SNIPPET_WORDS {
        (0, n)
    } else {
        let window = |s: usize| marks[s..s + SNIPPET_WORDS].iter().filter(|m| **m).count();
        let start = (0..n)
            .filter(|i| marks[*i])
            .map(|i| i.saturating_sub(CONTEXT_WORDS).min(n - SNIPPET_WORDS))
            .fold(None::<(usize, usize)>, |best, s| match best {
                Some((_, count)) if count >= window(s) => best,
                _ => Some((s, window(s))),
            })
            .map_or(0, |(s, _)| s);
        (start, start + SNIPPET_WORDS)
    };
    let mut out = String::new();
    if first > 0 {
        out.push_str(ELLIPSIS);
    }
    let mut at = if first == 0 { 0 } else { tokens[first].start };
    for (token, marked) in tokens[first..last].iter().zip(&marks[first..last]) {
        push_escaped(&mut out, &text[at..token.start]);
        if *marked {
            out.push_str("<em>");
        }
        push_escaped(&mut out, &text[token.start..token.end]);
        if *marked {
            out.push_str("</em>");
        }
        at = token.end;
    }
    if last == n {
        push_escaped(&mut out, &text[at..]);
    }
    let mut out = out.trim().to_string();
    if last < n {
        out.push_str(ELLIPSIS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(words: &[(&[&str], bool)]) -> Matcher {
        let phrases: Vec<Phrase> = words
            .iter()
            .map(|(w, prefix)| Phrase {
                words: w.iter().map(|s| s.to_string()).collect(),
                prefix: *prefix,
            })
            .collect();
        Matcher::new(&phrases)
    }

    #[test]
    fn marks_words_case_and_diacritics_insensitively_and_escapes_the_rest() {
        let m = matcher(&[(&["jose"], false), (&["ref"], true)]);
        assert_eq!(
            snippet("  <b>José</b> & \"REFUNDS\"\n\n it's   Josef ", &m),
            "&lt;b&gt;<em>José</em>&lt;/b&gt; &amp; &quot;<em>REFUNDS</em>&quot; it&#39;s Josef"
        );
    }

    #[test]
    fn marks_phrases_only_where_the_words_follow_each_other() {
        let m = matcher(&[(&["late", "delivery"], false)]);
        assert_eq!(
            snippet("Late delivery, late again; delivery late-delivery", &m),
            "<em>Late</em> <em>delivery</em>, late again; delivery <em>late</em>-<em>delivery</em>"
        );
    }

    #[test]
    fn long_texts_show_the_window_with_the_most_matches() {
        let words: Vec<String> = (0..60).map(|i| format!("w{i}")).collect();
        let mut text = words.join(" ");
        text = text.replace("w40", "refund").replace("w44", "refund");
        let m = matcher(&[(&["refund"], false)]);
        let expected_words: Vec<String> = (36..60)
            .map(|i| match i {
                40 | 44 => "<em>refund</em>".to_string(),
                i => format!("w{i}"),
            })
            .collect();
        assert_eq!(snippet(&text, &m), format!("…{}", expected_words.join(" ")));
        let m = matcher(&[(&["w2"], false)]);
        let expected: Vec<String> = (0..24)
            .map(|i| match i {
                2 => "<em>w2</em>".to_string(),
                i => format!("w{i}"),
            })
            .collect();
        assert_eq!(snippet(&text, &m), format!("{}…", expected.join(" ")));
        let m = matcher(&[(&["w30"], false)]);
        assert!(snippet(&text, &m).starts_with("…w26 w27 w28 w29 <em>w30</em> w31"));
        assert!(snippet(&text, &m).ends_with("w49…"));
    }
}
