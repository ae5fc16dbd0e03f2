//! The template language: text with `{{ variable }}` placeholders.
//!
//! - `{{ contact.firstName }}`: a variable, a dotted path of names (letters, digits and `_`, not
//!   starting with a digit) looked up in the rendering's variables;
//! - `{{ contact.firstName | "there" }}`: with a default used when the variable is missing or
//!   null (quoted, `\"` and `\\` escaped inside; unquoted text up to `}}` is taken trimmed);
//! - `\{{` is a literal `{{`.
//!
//! Parsing fails on a placeholder that is not closed, is empty, or names no valid variable, with
//! the line and column. Rendering fails naming every variable that is missing (without a
//! default) or not a text, number or boolean.

use std::fmt;

/// One part of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Variable {
        path: String,
        default: Option<String>,
    },
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why a template does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// 1-based line of the placeholder's `{{`.
    pub line: usize,
    /// 1-based column (in characters) of the placeholder's `{{`.
    pub column: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.message, self.line, self.column
        )
    }
}

/// Why a variable could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unrenderable {
    /// No value and no default.
    Missing(String),
    /// The value is an object or a list.
    NotText(String),
}

impl Unrenderable {
    /// The variable.
    pub fn variable(&self) -> &str {
        match self {
            Unrenderable::Missing(v) | Unrenderable::NotText(v) => v,
        }
    }
}

impl fmt::Display for Unrenderable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unrenderable::Missing(v) => write!(f, "missing variable `{v}`"),
            Unrenderable::NotText(v) => {
                write!(f, "variable `{v}` is not a text, number or boolean")
            }
        }
    }
}

fn position(source: &str, byte: usize) -> (usize, usize) {
    let before = &source[..byte];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn is_name(segment: &str) -> bool {
    let mut chars = segment.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The default of a placeholder: a quoted string (with `\"` and `\\`), or the trimmed text.
fn default_value(text: &str) -> Option<String> {
    let text = text.trim();
    let Some(quoted) = text.strip_prefix('"') else {
        return Some(text.to_string());
    };
    let inner = quoted.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Appends `text` to `out` with `& < > " '` escaped.
fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Parses `source`.
pub fn parse(source: &str) -> Result<Template, ParseError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("{{") {
        let offset = source.len() - rest.len() + at;
        if rest[..at].ends_with('\\') {
            text.push_str(&rest[..at - 1]);
            text.push_str("{{");
            rest = &rest[at + 2..];
            continue;
        }
        text.push_str(&rest[..at]);
        let error = |message: String| {
            let (line, column) = position(source, offset);
            ParseError {
                message,
                line,
                column,
            }
        };
        let inside = &rest[at + 2..];
        let Some(end) = inside.find("}}") else {
            return Err(error("unclosed placeholder `{{`".into()));
        };
        let body = &inside[..end];
        if body.contains("{{") {
            return Err(error("unclosed placeholder `{{`".into()));
        }
        let (path, default) = match body.split_once('|') {
            Some((path, default)) => {
                let Some(default) = default_value(default) else {
                    return Err(error(format!(
                        "placeholder `{{{{{body}}}}}` has a default with an unclosed quote"
                    )));
                };
                (path.trim(), Some(default))
            }
            None => (body.trim(), None),
        };
        if path.is_empty() {
            return Err(error("empty placeholder `{{}}`".into()));
        }
        if !path.split('.').all(is_name) {
            return Err(error(format!(
                "placeholder `{{{{{body}}}}}` does not name a variable (names are letters, \
                 digits and `_`, separated by dots)"
            )));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Variable {
            path: path.to_string(),
            default,
        });
        rest = &inside[end + 2..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Template { pieces })
}

impl Template {
    /// The variables it uses, in order of first use.
    pub fn variables(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for piece in &self.pieces {
            if let Piece::Variable { path, .. } = piece
                && !out.contains(&path.as_str())
            {
                out.push(path);
            }
        }
        out
    }

    /// The text with each variable replaced by its value in `variables` (a JSON object, nested
    /// by the path's dots); every variable that cannot be rendered is returned.
    pub fn render(&self, variables: &serde_json::Value) -> Result<String, Vec<Unrenderable>> {
        self.render_as(variables, false)
    }

    /// As [`Self::render`], for HTML: values and defaults are HTML-escaped (the template's own
    /// markup is kept), so a contact's name cannot inject markup.
    pub fn render_html(&self, variables: &serde_json::Value) -> Result<String, Vec<Unrenderable>> {
        self.render_as(variables, true)
    }

    fn render_as(
        &self,
        variables: &serde_json::Value,
        html: bool,
    ) -> Result<String, Vec<Unrenderable>> {
        let mut out = String::new();
        let mut value_out = String::new();
        let mut failed = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Variable { path, default } => {
                    let value = path
                        .split('.')
                        .try_fold(variables, |at, segment| at.get(segment));
                    value_out.clear();
                    match (value, default) {
                        (Some(serde_json::Value::String(s)), _) => value_out.push_str(s),
                        (Some(serde_json::Value::Number(n)), _) => {
                            value_out.push_str(&n.to_string())
                        }
                        (Some(serde_json::Value::Bool(b)), _) => value_out.push_str(&b.to_string()),
                        (None | Some(serde_json::Value::Null), Some(default)) => {
                            value_out.push_str(default)
                        }
                        (None | Some(serde_json::Value::Null), None) => {
                            let missing = Unrenderable::Missing(path.clone());
                            if !failed.contains(&missing) {
                                failed.push(missing);
                            }
                        }
                        (Some(_), _) => {
                            let not_text = Unrenderable::NotText(path.clone());
                            if !failed.contains(&not_text) {
                                failed.push(not_text);
                            }
                        }
                    }
                    if html {
                        escape_html(&value_out, &mut out);
                    } else {
                        out.push_str(&value_out);
                    }
                }
            }
        }
        if failed.is_empty() {
            Ok(out)
        } else {
            Err(failed)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_variables_defaults_and_escapes() {
        let template = parse(
            "Hi {{ contact.firstName | \"there\" }}, order {{order.id}} is {{ status }}. \
             \\{{literal}} {{ n }} {{ ok|no }}",
        )
        .unwrap();
        assert_eq!(
            template.variables(),
            ["contact.firstName", "order.id", "status", "n", "ok"]
        );
        let text = template
            .render(&json!({ "order": { "id": "A-1" }, "status": "shipped", "n": 3 }))
            .unwrap();
        assert_eq!(text, "Hi there, order A-1 is shipped. {{literal}} 3 no");
        let text = template
            .render(&json!({ "contact": { "firstName": "Ada" }, "order": { "id": 7 }, "status": "late", "n": 1.5, "ok": true }))
            .unwrap();
        assert_eq!(text, "Hi Ada, order 7 is late. {{literal}} 1.5 true");
    }

    #[test]
    fn html_rendering_escapes_values_but_not_the_templates_markup() {
        let template = parse("<p>Hi {{ name }} {{ x | \"<b>\" }}</p>").unwrap();
        let variables = json!({ "name": "<img src=x onerror=\"alert('1')\"> & co" });
        assert_eq!(
            template.render_html(&variables).unwrap(),
            "<p>Hi &lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt; &amp; co &lt;b&gt;</p>"
        );
        assert_eq!(
            template.render(&variables).unwrap(),
            "<p>Hi <img src=x onerror=\"alert('1')\"> & co <b></p>"
        );
    }

    #[test]
    fn rendering_names_every_missing_or_unrenderable_variable() {
        let template = parse("{{a}} {{b.c}} {{a}} {{d}}").unwrap();
        assert_eq!(
            template.render(&json!({ "b": { "c": null }, "d": { "e": 1 } })),
            Err(vec![
                Unrenderable::Missing("a".into()),
                Unrenderable::Missing("b.c".into()),
                Unrenderable::NotText("d".into()),
            ])
        );
        assert_eq!(
            Unrenderable::Missing("b.c".into()).to_string(),
            "missing variable `b.c`"
        );
    }

    #[test]
    fn bad_placeholders_are_refused_with_their_position() {
        let error = |source: &str| parse(source).unwrap_err().to_string();
        assert_eq!(
            error("Hello\n  {{ name"),
            "unclosed placeholder `{{` at line 2, column 3"
        );
        assert_eq!(
            error("{{ a {{ b }}"),
            "unclosed placeholder `{{` at line 1, column 1"
        );
        assert_eq!(
            error("x {{ }}"),
            "empty placeholder `{{}}` at line 1, column 3"
        );
        assert_eq!(
            error("{{ 1st }}"),
            "placeholder `{{ 1st }}` does not name a variable (names are letters, digits and \
             `_`, separated by dots) at line 1, column 1"
        );
        assert_eq!(
            error("{{ a | \"b }}"),
            "placeholder `{{ a | \"b }}` has a default with an unclosed quote at line 1, column 1"
        );
        assert_eq!(
            parse("no placeholders }} here").unwrap().variables().len(),
            0
        );
    }
}
