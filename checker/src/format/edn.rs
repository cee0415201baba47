//! A small EDN parser, enough for Jepsen histories: maps, vectors, lists, sets, keywords,
//! symbols, nil, booleans, integers (with `N` suffix), floats (with `M` suffix), strings
//! with escapes, characters, tagged literals (`#jepsen.history.Op{...}` is read as the map
//! it tags), `#_` discard, comments and commas as whitespace.
//!
//! Hand-written rather than taken from a crate because we need the 1-based line of every
//! value for error messages, and a hard cap on nesting depth so that hostile input cannot
//! overflow the stack (the parser is recursive descent; [`MAX_DEPTH`] bounds recursion).

use std::fmt;

/// Deepest nesting of collections accepted. Jepsen ops nest a few levels; 128 leaves room
/// for odd values while keeping recursion far from any thread's stack limit.
pub const MAX_DEPTH: usize = 128;

/// One parsed EDN value and the line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Edn {
    pub line: usize,
    pub kind: EdnKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EdnKind {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer outside i64 (or with an `N` suffix that does not fit), a float, or a
    /// decimal: kept as its source text.
    Number(String),
    Str(String),
    Char(char),
    /// Without the leading colon: `:read` is `Keyword("read")`.
    Keyword(String),
    Symbol(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    /// `#tag value`; `tag` without the `#`.
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value a tagged literal wraps (recursively), or the value itself.
    pub fn untagged(&self) -> &Edn {
        let mut e = self;
        while let EdnKind::Tagged(_, inner) = &e.kind {
            e = inner;
        }
        e
    }

    /// A short description of the kind, for "expected X, got Y" messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            EdnKind::Nil => "nil",
            EdnKind::Bool(_) => "a boolean",
            EdnKind::Int(_) | EdnKind::Number(_) => "a number",
            EdnKind::Str(_) => "a string",
            EdnKind::Char(_) => "a character",
            EdnKind::Keyword(_) => "a keyword",
            EdnKind::Symbol(_) => "a symbol",
            EdnKind::Vector(_) => "a vector",
            EdnKind::List(_) => "a list",
            EdnKind::Set(_) => "a set",
            EdnKind::Map(_) => "a map",
            EdnKind::Tagged(..) => "a tagged value",
        }
    }
}

/// A syntax error: the line it was found on and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnError {
    pub line: usize,
    pub expected: String,
}

impl fmt::Display for EdnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: expected {}", self.line, self.expected)
    }
}

/// Parses every top-level value in `text`. `first_line` is the line number of the first
/// byte (1 for a whole file; the log reader passes the line it is parsing).
pub fn parse_all(text: &str, first_line: usize) -> Result<Vec<Edn>, EdnError> {
    let mut p = Parser::new(text, first_line);
    let mut out = Vec::new();
    loop {
        p.skip_ws(0)?;
        if p.at_end() {
            return Ok(out);
        }
        out.push(p.value(0)?);
    }
}

/// A cursor over EDN text that hands out one top-level value at a time, so callers can
/// read a value and then look at what follows (the log reader reads a value, then an
/// optional error after it).
pub struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str, first_line: usize) -> Parser<'a> {
        Parser {
            bytes: text.as_bytes(),
            text,
            pos: 0,
            line: first_line,
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Parses the next value, or `None` at the end of input.
    pub fn next_value(&mut self) -> Result<Option<Edn>, EdnError> {
        self.skip_ws(0)?;
        if self.at_end() {
            return Ok(None);
        }
        self.value(0).map(Some)
    }

    fn err<T>(&self, expected: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError {
            line: self.line,
            expected: expected.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded values.
    fn skip_ws(&mut self, depth: usize) -> Result<(), EdnError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | 0x0c) => {
                    self.bump();
                }
                Some(b';') => {
                    while let Some(b) = self.peek() {
                        if b == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                Some(b'#') if self.bytes.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    // The discarded value must still be well formed. It counts as one
                    // level deeper so that `#_#_#_...` cannot recurse without bound.
                    self.value(depth + 1)?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Edn, EdnError> {
        if depth >= MAX_DEPTH {
            return self.err(format!("nesting at most {MAX_DEPTH} levels deep"));
        }
        self.skip_ws(depth)?;
        let line = self.line;
        let Some(b) = self.peek() else {
            return self.err("a value, not the end of input");
        };
        let kind = match b {
            b'[' => {
                self.bump();
                EdnKind::Vector(self.seq(b']', depth)?)
            }
            b'(' => {
                self.bump();
                EdnKind::List(self.seq(b')', depth)?)
            }
            b'{' => {
                self.bump();
                self.map(depth)?
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        EdnKind::Set(self.seq(b'}', depth)?)
                    }
                    Some(c) if c.is_ascii_alphabetic() => {
                        let tag = self.token().to_string();
                        let inner = self.value(depth + 1)?;
                        EdnKind::Tagged(tag, Box::new(inner))
                    }
                    _ => return self.err("a set `#{` or a tag `#name` after `#`"),
                }
            }
            b'"' => {
                self.bump();
                EdnKind::Str(self.string()?)
            }
            b'\\' => {
                self.bump();
                EdnKind::Char(self.character()?)
            }
            b':' => {
                self.bump();
                let t = self.token();
                if t.is_empty() {
                    return self.err("a keyword name after `:`");
                }
                EdnKind::Keyword(t.to_string())
            }
            b']' | b')' | b'}' => {
                return self.err(format!("a value, not an unmatched `{}`", b as char));
            }
            _ => {
                let t = self.token();
                if t.is_empty() {
                    return self.err(format!("a value, not `{}`", printable(b)));
                }
                self.atom(t)?
            }
        };
        Ok(Edn { line, kind })
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let open_line = self.line;
        let mut items = Vec::new();
        loop {
            self.skip_ws(depth)?;
            match self.peek() {
                None => {
                    return Err(EdnError {
                        line: self.line,
                        expected: format!(
                            "`{}` closing the collection opened on line {open_line}",
                            close as char
                        ),
                    })
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<EdnKind, EdnError> {
        let items = self.seq(b'}', depth)?;
        if items.len() % 2 != 0 {
            return self.err("a map with an even number of forms (a value for every key)");
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(EdnKind::Map(pairs))
    }

    /// A run of symbol/number characters.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        // Token boundaries are ASCII delimiters, so slicing is on char boundaries.
        &self.text[start..self.pos]
    }

    fn atom(&self, t: &str) -> Result<EdnKind, EdnError> {
        match t {
            "nil" => return Ok(EdnKind::Nil),
            "true" => return Ok(EdnKind::Bool(true)),
            "false" => return Ok(EdnKind::Bool(false)),
            _ => {}
        }
        let first = t.as_bytes()[0];
        let second = t.as_bytes().get(1).copied();
        let numeric = first.is_ascii_digit()
            || ((first == b'-' || first == b'+') && second.is_some_and(|c| c.is_ascii_digit()));
        if !numeric {
            return Ok(EdnKind::Symbol(t.to_string()));
        }
        let body = t.strip_suffix('N').unwrap_or(t);
        if body.bytes().skip(1).all(|c| c.is_ascii_digit()) {
            return Ok(match body.parse::<i64>() {
                Ok(i) => EdnKind::Int(i),
                Err(_) => EdnKind::Number(t.to_string()),
            });
        }
        let body = t.strip_suffix('M').unwrap_or(t);
        let float_chars = body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
        if float_chars && body.parse::<f64>().is_ok() {
            return Ok(EdnKind::Number(t.to_string()));
        }
        self.err(format!("a number, not `{t}`"))
    }

    fn string(&mut self) -> Result<String, EdnError> {
        let open_line = self.line;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.bump();
            }
            out.push_str(&self.text[start..self.pos]);
            match self.bump() {
                None => {
                    return self.err(format!(
                        "`\"` closing the string opened on line {open_line}"
                    ))
                }
                Some(b'"') => return Ok(out),
                Some(_) => {
                    let Some(e) = self.bump() else {
                        return self.err("an escape after `\\`");
                    };
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'u' => out.push(self.unicode_escape()?),
                        other => {
                            return self.err(format!(
                                "a string escape (\\n \\t \\r \\\" \\\\ \\uXXXX), not `\\{}`",
                                printable(other)
                            ))
                        }
                    }
                }
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, EdnError> {
        let hex = self.text.get(self.pos..self.pos + 4);
        let code = hex.and_then(|h| u32::from_str_radix(h, 16).ok());
        let Some(code) = code else {
            return self.err("four hex digits after \\u");
        };
        self.pos += 4;
        // Lone surrogates cannot be a Rust char; keep the input readable instead of failing.
        Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn character(&mut self) -> Result<char, EdnError> {
        // `\x`, `\newline`, `\uXXXX`: the first char is taken even if it is a delimiter.
        let Some(first) = self.text[self.pos..].chars().next() else {
            return self.err("a character after `\\`");
        };
        self.pos += first.len_utf8();
        if first == '\n' {
            self.line += 1;
        }
        if !first.is_ascii_alphabetic() {
            return Ok(first);
        }
        let rest = self.token();
        if rest.is_empty() {
            return Ok(first);
        }
        let name = format!("{first}{rest}");
        match name.as_str() {
            "newline" => Ok('\n'),
            "space" => Ok(' '),
            "tab" => Ok('\t'),
            "return" => Ok('\r'),
            "backspace" => Ok('\u{8}'),
            "formfeed" => Ok('\u{c}'),
            n if n.starts_with('u') && n.len() == 5 => u32::from_str_radix(&n[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .map_or_else(|| self.err("a \\uXXXX character"), Ok),
            _ => self.err(format!("a character name, not `\\{name}`")),
        }
    }
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | b','
            | 0x0c
            | b'['
            | b']'
            | b'('
            | b')'
            | b'{'
            | b'}'
            | b'"'
            | b';'
            | b'\\'
    )
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> EdnKind {
        let mut v = parse_all(text, 1).unwrap();
        assert_eq!(v.len(), 1, "{text}");
        v.remove(0).kind
    }

    #[test]
    fn scalars() {
        assert_eq!(one("nil"), EdnKind::Nil);
        assert_eq!(one("true"), EdnKind::Bool(true));
        assert_eq!(one("-42"), EdnKind::Int(-42));
        assert_eq!(one("+7"), EdnKind::Int(7));
        assert_eq!(one("7N"), EdnKind::Int(7));
        assert_eq!(
            one("99999999999999999999"),
            EdnKind::Number("99999999999999999999".into())
        );
        assert_eq!(one("1.5e3"), EdnKind::Number("1.5e3".into()));
        assert_eq!(one("1.5M"), EdnKind::Number("1.5M".into()));
        assert_eq!(one(":timed-out"), EdnKind::Keyword("timed-out".into()));
        assert_eq!(one(":jepsen/x"), EdnKind::Keyword("jepsen/x".into()));
        assert_eq!(one("foo.bar"), EdnKind::Symbol("foo.bar".into()));
        assert_eq!(one(r#""a\"b\n\u00e9""#), EdnKind::Str("a\"b\né".into()));
        assert_eq!(one(r"\a"), EdnKind::Char('a'));
        assert_eq!(one(r"\newline"), EdnKind::Char('\n'));
        assert_eq!(one(r"\u0041"), EdnKind::Char('A'));
        assert_eq!(one(r"\("), EdnKind::Char('('));
    }

    #[test]
    fn collections_and_tags() {
        let k = one("{:a [1 2], :b #{:x} :c (nil) ; comment\n :d #_ 5 6}");
        let EdnKind::Map(pairs) = k else {
            panic!("not a map: {k:?}")
        };
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[3].1.kind, EdnKind::Int(6));
        assert_eq!(pairs[3].1.line, 2);
        let t = one("#jepsen.history.Op{:index 0}");
        let EdnKind::Tagged(tag, inner) = t else {
            panic!("not tagged")
        };
        assert_eq!(tag, "jepsen.history.Op");
        assert!(matches!(inner.kind, EdnKind::Map(_)));
    }

    #[test]
    fn errors_name_lines() {
        let e = parse_all("[1 2\n 3", 1).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("opened on line 1"), "{e}");
        let e = parse_all("{:a}", 1).unwrap_err();
        assert!(e.expected.contains("even number"), "{e}");
        let e = parse_all("\n\n\"abc", 1).unwrap_err();
        assert!(e.expected.contains("line 3"), "{e}");
        assert!(parse_all("1.2.3", 1).is_err());
        assert!(parse_all("#", 1).is_err());
        assert!(parse_all(")", 1).is_err());
        assert!(parse_all(r#""\q""#, 1).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let e = parse_all(&deep, 1).unwrap_err();
        assert!(e.expected.contains("nesting"), "{e}");
        let deep_tags = "#a ".repeat(100_000) + "1";
        assert!(parse_all(&deep_tags, 1).is_err());
        let deep_discards = "#_".repeat(100_000) + "1";
        assert!(parse_all(&deep_discards, 1).is_err());
        let ok = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
        assert!(parse_all(&ok, 1).is_ok());
    }
}
