//! JSON as Python's `json.dump` writes it: the bare tokens `NaN`, `Infinity` and `-Infinity`
//! for non-finite floats, which strict parsers refuse. The trainer writes them into every
//! run's config (`moe_capacity_factor = inf`) and into a diverged run's diagnostics.

use std::borrow::Cow;

/// The three tokens and what they stand for, longest first where one starts another.
const TOKENS: [(&str, &str); 3] = [
    ("-Infinity", "\"-Infinity\""),
    ("Infinity", "\"Infinity\""),
    ("NaN", "\"NaN\""),
];

/// `text` with each non-finite token outside strings written as a JSON string of itself
/// (`"Infinity"`), so a strict parser reads it and a person still sees it; text without
/// them comes back as it is. Numbers read from such strings parse back to the float
/// (`"Infinity".parse::<f64>()` is infinity).
pub fn to_strict(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !text.contains("NaN") && !text.contains("Infinity") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1, // the escaped byte is never a quote that ends the string
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        // By bytes: `i` may sit inside a multi-byte character here; a token is ASCII, so
        // where one starts is always a character boundary.
        let rest = &bytes[i..];
        match TOKENS.iter().find(|(t, _)| rest.starts_with(t.as_bytes())) {
            Some((token, quoted)) => {
                out.push_str(&text[copied..i]);
                out.push_str(quoted);
                i += token.len();
                copied = i;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_tokens_become_strings_outside_strings_only() {
        let python = r#"{"moe_capacity_factor": Infinity, "a": -Infinity, "b": [NaN, 1.5],
            "name": "NaN Infinity \"-Infinity\"", "c": 1e5}"#;
        let strict = to_strict(python);
        let v: serde_json::Value = serde_json::from_str(&strict).unwrap();
        assert_eq!(v["moe_capacity_factor"], "Infinity");
        assert_eq!(v["a"], "-Infinity");
        assert_eq!(v["b"][0], "NaN");
        assert_eq!(v["b"][1], 1.5);
        assert_eq!(v["name"], "NaN Infinity \"-Infinity\"");
        assert_eq!(v["c"], 1e5);
    }

    #[test]
    fn strict_json_is_left_alone() {
        let strict = r#"{"lr": 3e-4, "note": "no tokens here", "x": [1, 2]}"#;
        assert!(matches!(to_strict(strict), Cow::Borrowed(_)));
        let with_word = r#"{"dataset": "Infinity-mix"}"#;
        assert!(matches!(to_strict(with_word), Cow::Borrowed(_)));
    }

    #[test]
    fn broken_text_does_not_panic() {
        for bad in ["Infin", "\"unterminated NaN", "\\", "-", "NaN\"", "é NaN ü"] {
            let _ = to_strict(bad);
        }
        assert_eq!(to_strict("é NaN ü"), "é \"NaN\" ü");
    }
}
