//! Deserializing the raw config with the key path of every serde error, and
//! serde's messages restated as "expected …, found …".
//!
//! `serde_path_to_error` tracks the path (`node.mtu`, `pods[1].ip`); serde's
//! messages have a fixed shape (`invalid type: string "1500", expected u32`,
//! `unknown field `x`, expected one of …`, `missing field `x``), which
//! [`restate`] turns into the key they are about and what was expected.

use serde::de::DeserializeOwned;

use super::error::ConfigError;

/// Deserializes `text`; a serde error names the full key. Syntax errors are
/// found by the caller's parse before this runs.
pub(super) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let path = e.path().to_string();
        let (leaf, problem) = restate(e.inner().message());
        let key = match (path.as_str(), leaf) {
            (".", Some(leaf)) => leaf,
            (_, Some(leaf)) => format!("{path}.{leaf}"),
            (".", None) => "(document)".to_owned(),
            (_, None) => path,
        };
        ConfigError::key(key, problem)
    })
}

/// serde's words for Rust types, in the config's words.
fn expectation(serde: &str) -> String {
    let words = match serde {
        "u8" => "an integer 0..=255",
        "u16" => "an integer 0..=65535",
        "u32" => "an integer 0..=4294967295",
        "u64" | "usize" => "a non-negative integer",
        "a sequence" => "an array",
        "path string" => "a string (a path)",
        s if s.starts_with("struct ") => "a table",
        other => other,
    };
    words.to_owned()
}

/// serde's `Unexpected` in TOML's words.
fn found(serde: &str) -> String {
    match serde {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        other => other.to_owned(),
    }
}

/// `` `a`, `b` `` -> `a, b`.
fn unquote(list: &str) -> String {
    list.replace('`', "")
}

/// `` `name`rest `` -> `(name, rest)`.
fn field(rest: &str) -> Option<(&str, &str)> {
    rest.strip_prefix('`').and_then(|r| r.split_once('`'))
}

/// serde's `, expected one of `a`, `b`` / `, expected `a` or `b`` tail, without quotes.
fn alternatives(tail: &str) -> Option<String> {
    if let Some(list) = tail.strip_prefix(", expected one of ") {
        return Some(format!("one of {}", unquote(list)));
    }
    tail.strip_prefix(", expected ").map(unquote)
}

/// The key a message is about below the error's path (a missing key), and the problem as "expected …, found …".
fn restate(message: &str) -> (Option<String>, String) {
    if let Some((_, rest)) = message.strip_prefix("unknown field ").and_then(field) {
        let expected = alternatives(rest).unwrap_or_else(|| "no keys here".to_owned());
        // serde_path_to_error has put the unknown key on the path already.
        return (None, format!("unknown key: expected {expected}"));
    }
    if let Some((name, _)) = message.strip_prefix("missing field ").and_then(field) {
        return (Some(name.to_owned()), "required key is missing".to_owned());
    }
    if let Some((name, rest)) = message.strip_prefix("duplicate field ").and_then(field) {
        return (Some(name.to_owned()), format!("set twice{rest}"));
    }
    if let Some((variant, rest)) = message.strip_prefix("unknown variant ").and_then(field) {
        let expected = alternatives(rest).unwrap_or_default();
        return (None, format!("expected {expected}, found \"{variant}\""));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((what, expected)) =
            message.strip_prefix(prefix).and_then(|r| r.rsplit_once(", expected "))
        {
            return (None, format!("expected {}, found {}", expectation(expected), found(what)));
        }
    }
    if let Some((len, expected)) =
        message.strip_prefix("invalid length ").and_then(|r| r.split_once(", expected "))
    {
        return (None, format!("expected {expected}, found {len} elements"));
    }
    (None, message.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::restate;

    #[test]
    fn serde_messages_are_restated_as_expected_and_found() {
        let cases = [
            (
                "invalid type: string \"1500\", expected u32",
                None,
                "expected an integer 0..=4294967295, found string \"1500\"",
            ),
            (
                "invalid value: integer `-1`, expected u16",
                None,
                "expected an integer 0..=65535, found integer `-1`",
            ),
            ("invalid type: map, expected a string", None, "expected a string, found a table"),
            (
                "unknown field `mtuu`, expected one of `name`, `mtu`",
                None,
                "unknown key: expected one of name, mtu",
            ),
            ("unknown field `x`, there are no fields", None, "unknown key: expected no keys here"),
            ("missing field `name`", Some("name"), "required key is missing"),
            (
                "unknown variant `flat`, expected `etcd` or `static`",
                None,
                "expected etcd or static, found \"flat\"",
            ),
        ];
        for (message, key, problem) in cases {
            assert_eq!(restate(message), (key.map(str::to_owned), problem.to_owned()), "{message}");
        }
    }
}
