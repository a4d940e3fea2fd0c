//! The config text kept with its spans, to name the line and column of a key.
//!
//! Errors carry dotted key paths (`node.mtu`, `etcd.endpoints[0]`,
//! `static.routes[1].via`); this walks the same path through the parsed
//! document. A key that is absent (a missing required key) is placed at the
//! deepest table on its path that is present, usually the `[section]` header.

use std::ops::Range;

use toml_edit::{ImDocument, Item};

use super::error::Location;

/// A TOML text, parsed with spans.
pub(super) struct Source<'a> {
    name: &'a str,
    text: &'a str,
    doc: ImDocument<&'a str>,
}

/// The line and column of byte `offset` of `text`, in the file `name`.
pub(super) fn location(name: &str, text: &str, offset: usize) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        file: name.to_owned(),
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, PartialEq, Eq)]
enum Step<'k> {
    Key(&'k str),
    Index(usize),
}

/// Splits `a.b[0].c` into its steps (our keys never contain dots or brackets).
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Step::Key(name));
        }
        while let Some((index, tail)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Step::Index(i));
            }
            rest = tail.strip_prefix('[').unwrap_or(tail);
        }
    }
    out
}

/// Where `item` starts: a value's span, a table's `[header]`.
fn span_of(item: &Item) -> Option<Range<usize>> {
    match item {
        Item::Table(t) => t.span(),
        Item::ArrayOfTables(a) => a.span().or_else(|| a.get(0).and_then(|t| t.span())),
        other => other.span(),
    }
}

impl<'a> Source<'a> {
    /// Parses `text`; `name` is how locations name the file.
    pub(super) fn parse(name: &'a str, text: &'a str) -> Result<Self, toml_edit::TomlError> {
        Ok(Source { name, text, doc: ImDocument::parse(text)? })
    }

    /// Where the key at `path` is, or the deepest table of `path` that is present.
    pub(super) fn locate(&self, path: &str) -> Option<Location> {
        let mut item = self.doc.as_item();
        let mut span = None;
        for step in steps(path) {
            let next = match step {
                Step::Key(k) => match item {
                    Item::Table(t) => t.get_key_value(k).map(|(key, v)| (key.span(), v)),
                    Item::Value(v) => {
                        v.as_inline_table().and_then(|t| t.get_key_value(k)).map(|(key, v)| (key.span(), v))
                    }
                    _ => None,
                },
                Step::Index(i) => item.get(i).map(|v| (None, v)),
            };
            let Some((key_span, next)) = next else { break };
            span = span_of(next).or(key_span).or(span);
            item = next;
        }
        span.map(|s| location(self.name, self.text, s.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_split_into_keys_and_indices() {
        use Step::{Index, Key};
        assert_eq!(steps("node.mtu"), [Key("node"), Key("mtu")]);
        assert_eq!(steps("static.routes[1].via"), [Key("static"), Key("routes"), Index(1), Key("via")]);
        assert_eq!(steps("pods[0]"), [Key("pods"), Index(0)]);
    }

    #[test]
    fn keys_are_located_at_their_value_and_absent_keys_at_their_table() {
        let text = "mode = \"etcd\"\n[node]\nmtu = 9000\n[etcd]\nendpoints = [\"a\", \"b\"]\n[[pods]]\nip = 1\n[[pods]]\nip = 2\n";
        let source = Source::parse("c.toml", text).unwrap();
        let at = |p| source.locate(p).map(|l| l.to_string());
        assert_eq!(at("node.mtu").as_deref(), Some("c.toml:3:7"));
        assert_eq!(at("etcd.endpoints[1]").as_deref(), Some("c.toml:5:19"));
        assert_eq!(at("pods[1].ip").as_deref(), Some("c.toml:9:6"));
        assert_eq!(at("node.name").as_deref(), Some("c.toml:2:1"));
        assert_eq!(at("static"), None);
    }
}
