//! The search query language, parsed into terms that are rendered for each backend by us, so user
//! text never reaches FTS5's `MATCH` syntax or `to_tsquery` unquoted.
//!
//! - Words are ANDed: `refund march` finds conversations that contain both words, anywhere in the
//!   conversation (subject, messages, notes, the requester's names, emails and phones).
//! - `"a quoted phrase"`: the words in this order, next to each other, in one text.
//! - `refu*`: words starting with `refu` (a trailing `*`; also after a phrase).
//! - `refund OR return`: either word (`OR` in capitals, between two terms).
//! - `-spam` or `NOT spam`: conversations without the word (or `-"phrase"`).
//! - Case and Latin diacritics are ignored (`jose` finds `José`); there is no stemming: `refund`
//!   does not find `refunds` (use `refund*`).
//! - Punctuation separates words: `ann@example.com` is the phrase `ann example com`, `+45 20 12`
//!   the phrase `45 20 12`. `AND`, parentheses and other operators are ignored.

use crate::error::{AppError, AppResult};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// Most terms (words or phrases, looked for or excluded) in one query.
pub const MAX_TERMS: usize = 16;

/// Words that must appear in this order, next to each other; the last may be a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phrase {
    /// The words, as typed (letters and digits only).
    pub words: Vec<String>,
    /// Whether the last word is a prefix.
    pub prefix: bool,
}

/// Alternatives of which one must match (`a OR b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    /// The alternatives.
    pub alternatives: Vec<Phrase>,
}

/// A parsed query: every clause must match somewhere in a conversation, no excluded phrase may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    /// Clauses, all required.
    pub clauses: Vec<Clause>,
    /// Phrases the conversation must not contain.
    pub excluded: Vec<Phrase>,
}

enum Item {
    Term { phrase: Phrase, negated: bool },
    Or,
    Not,
}

/// Splits text into words: maximal runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn lex(input: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // A leading `-` (after any opening parentheses) excludes the term.
        let mut negated = false;
        let mut j = i;
        while j < chars.len() && chars[j] == '(' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '-' {
            negated = true;
            while j < chars.len() && chars[j] == '-' {
                j += 1;
            }
        }
        if j < chars.len() && chars[j] == '"' {
            let start = j + 1;
            let mut end = start;
            while end < chars.len() && chars[end] != '"' {
                end += 1;
            }
            let text: String = chars[start..end].iter().collect();
            i = (end + 1).min(chars.len());
            let prefix = i < chars.len() && chars[i] == '*';
            // The rest of the token (a `*`, closing parentheses) carries no words of its own.
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                i += 1;
            }
            let words = words(&text);
            if !words.is_empty() {
                items.push(Item::Term {
                    phrase: Phrase { words, prefix },
                    negated,
                });
            }
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !(i > start && chars[i] == '"') {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        match token.as_str() {
            "OR" | "|" => items.push(Item::Or),
            "NOT" => items.push(Item::Not),
            "AND" | "&" => {}
            _ => {
                let body = token.trim_end_matches(')');
                let prefix = body.ends_with('*');
                let words = words(&token);
                if !words.is_empty() {
                    items.push(Item::Term {
                        phrase: Phrase { words, prefix },
                        negated,
                    });
                }
            }
        }
    }
    items
}

/// Parses a query, or explains why it can't be searched (`BAD_USER_INPUT`).
pub fn parse(input: &str) -> AppResult<SearchQuery> {
    if input.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::BadUserInput(format!(
            "the search query is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let mut clauses: Vec<Clause> = Vec::new();
    let mut excluded = Vec::new();
    let mut pending_or = false;
    let mut pending_not = false;
    // Whether the last item was a term that the next `OR` may extend.
    let mut last_positive = false;
    for item in lex(input) {
        match item {
            Item::Or => pending_or = last_positive,
            Item::Not => pending_not = true,
            Item::Term { phrase, negated } => {
                if negated || pending_not {
                    excluded.push(phrase);
                    last_positive = false;
                } else if pending_or {
                    if let Some(clause) = clauses.last_mut() {
                        clause.alternatives.push(phrase);
                    }
                    last_positive = true;
                } else {
                    clauses.push(Clause {
                        alternatives: vec![phrase],
                    });
                    last_positive = true;
                }
                pending_or = false;
                pending_not = false;
            }
        }
    }
    if clauses.is_empty() && excluded.is_empty() {
        return Err(AppError::BadUserInput(
            "the search query has no words".into(),
        ));
    }
    if clauses.is_empty() {
        return Err(AppError::BadUserInput(
            "the search query only excludes words: add a word to look for".into(),
        ));
    }
    let terms = clauses.iter().map(|c| c.alternatives.len()).sum::<usize>() + excluded.len();
    if terms > MAX_TERMS {
        return Err(AppError::BadUserInput(format!(
            "the search query has more than {MAX_TERMS} words or phrases"
        )));
    }
    Ok(SearchQuery { clauses, excluded })
}

impl Phrase {
    /// As an FTS5 string: `"w1 w2"` (with `*` for a prefix). Words are letters and digits only;
    /// quotes are doubled anyway.
    pub fn fts5(&self) -> String {
        let text = self.words.join(" ").replace('"', "\"\"");
        format!("\"{text}\"{}", if self.prefix { "*" } else { "" })
    }

    /// As `to_tsquery` text: `'w1' <-> 'w2':*`, each word a quoted lexeme.
    pub fn tsquery(&self) -> String {
        let last = self.words.len().saturating_sub(1);
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let quoted = format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''"));
                if i == last && self.prefix {
                    format!("{quoted}:*")
                } else {
                    quoted
                }
            })
            .collect::<Vec<_>>()
            .join(" <-> ")
    }
}

/// Renders alternatives for one backend.
pub fn fts5_any(phrases: &[Phrase]) -> String {
    phrases
        .iter()
        .map(Phrase::fts5)
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Renders alternatives as `to_tsquery` text.
pub fn tsquery_any(phrases: &[Phrase]) -> String {
    phrases
        .iter()
        .map(|p| format!("({})", p.tsquery()))
        .collect::<Vec<_>>()
        .join(" | ")
}

impl SearchQuery {
    /// Every phrase looked for (for highlighting).
    pub fn positive_phrases(&self) -> impl Iterator<Item = &Phrase> {
        self.clauses.iter().flat_map(|c| c.alternatives.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(words: &[&str], prefix: bool) -> Phrase {
        Phrase {
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix,
        }
    }

    fn clause(phrases: Vec<Phrase>) -> Clause {
        Clause {
            alternatives: phrases,
        }
    }

    #[test]
    fn words_phrases_prefixes_or_and_exclusions() {
        let q = parse(r#"refund "late delivery" smi* march OR april -spam NOT "cold call" x"#)
            .map_err(|e| e.public_message())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            q.clauses,
            vec![
                clause(vec![phrase(&["refund"], false)]),
                clause(vec![phrase(&["late", "delivery"], false)]),
                clause(vec![phrase(&["smi"], true)]),
                clause(vec![phrase(&["march"], false), phrase(&["april"], false)]),
                clause(vec![phrase(&["x"], false)]),
            ]
        );
        assert_eq!(
            q.excluded,
            vec![phrase(&["spam"], false), phrase(&["cold", "call"], false)]
        );
    }

    #[test]
    fn punctuation_splits_words_into_a_phrase() {
        let q = parse("ann@example.com +45-20 (José*) -\"x y\"*")
            .map_err(|e| e.public_message())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            q.clauses,
            vec![
                clause(vec![phrase(&["ann", "example", "com"], false)]),
                clause(vec![phrase(&["45", "20"], false)]),
                clause(vec![phrase(&["José"], true)]),
            ]
        );
        assert_eq!(q.excluded, vec![phrase(&["x", "y"], true)]);
    }

    #[test]
    fn dangling_operators_are_ignored() {
        let q = parse("OR a OR OR b AND -")
            .map_err(|e| e.public_message())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            q.clauses,
            vec![clause(vec![phrase(&["a"], false), phrase(&["b"], false)])]
        );
    }

    #[test]
    fn rejects_long_empty_operator_only_and_exclusion_only_queries() {
        let message = |q: &str| parse(q).err().map(|e| e.public_message());
        assert_eq!(
            message(&"a".repeat(257)).as_deref(),
            Some("the search query is longer than 256 characters")
        );
        assert!(message(&"é".repeat(256)).is_none());
        for q in ["", "   ", r#"AND OR NOT * " - ( ) "" -"*" && ||"#] {
            assert_eq!(
                message(q).as_deref(),
                Some("the search query has no words"),
                "{q}"
            );
        }
        assert_eq!(
            message("-spam").as_deref(),
            Some("the search query only excludes words: add a word to look for")
        );
        let many = (0..17)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            message(&many).as_deref(),
            Some("the search query has more than 16 words or phrases")
        );
    }

    #[test]
    fn renders_quoted_backend_queries() {
        let p = phrase(&["late", "deliv"], true);
        assert_eq!(p.fts5(), r#""late deliv"*"#);
        assert_eq!(p.tsquery(), "'late' <-> 'deliv':*");
        let alternatives = [phrase(&["a"], false), phrase(&["b"], false)];
        assert_eq!(fts5_any(&alternatives), r#""a" OR "b""#);
        assert_eq!(tsquery_any(&alternatives), "('a') | ('b')");
    }
}
