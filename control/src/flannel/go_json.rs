//! Field lookup the way Go's `encoding/json` matches struct fields: an exact
//! key wins, otherwise the first key equal under ASCII case folding.

use serde_json::{Map, Value};

/// Finds `name` in `obj` as Go would when decoding into a field named `name`.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Like [`field`], but a JSON `null` counts as absent (Go leaves the field at
/// its zero value).
pub(crate) fn present<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    field(obj, name).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_key_is_preferred_over_a_case_folded_one() {
        let v: Value = serde_json::from_str(r#"{"network":"a","Network":"b"}"#).unwrap();
        assert_eq!(field(v.as_object().unwrap(), "Network"), Some(&Value::from("b")));
        let v: Value = serde_json::from_str(r#"{"NETWORK":"a"}"#).unwrap();
        assert_eq!(field(v.as_object().unwrap(), "Network"), Some(&Value::from("a")));
    }
}
