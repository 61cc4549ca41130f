//! JSON values read as the OpenAPI documents describe them, so that what a
//! document allows is what the code takes:
//! - a JSON Schema `integer` is any number whose fractional part is zero, so
//!   `2.0` and `2e3` are integers; clients that write every number as a
//!   float (JavaScript after arithmetic, a schema-driven client) are
//!   answered as the document promises rather than with `400`;
//! - printable text, the rule of ids and names, has a pattern the documents
//!   state.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};
use serde_json::Value;

/// Printable text as a JSON Schema `pattern` (ECMA-262 and Python read it
/// alike): no control character (Unicode `Cc`), and at least one character
/// that is not white space. It is [`is_printable_text`], spelled out; a test
/// holds the two together.
pub const PRINTABLE_TEXT_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// Text a person can read back: not blank, no control characters.
pub fn is_printable_text(text: &str) -> bool {
    !text.trim().is_empty() && !text.chars().any(char::is_control)
}

/// The whole number `value` holds, written as an integer or as a number
/// with a zero fractional part; `None` for anything else, or beyond `i64`.
pub fn whole_number(value: &Value) -> Option<i64> {
    let Value::Number(number) = value else {
        return None;
    };
    if let Some(n) = number.as_i64() {
        return Some(n);
    }
    number.as_f64().and_then(integral)
}

/// `f` as an `i64` when it is whole and in range.
fn integral(f: f64) -> Option<i64> {
    // 2^63 is exact as an f64; every whole f64 below it fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

/// `#[serde(deserialize_with = "contracts::json::deserialize_whole_number")]`
/// for an `i64` field: a whole number, also written as `2.0`.
pub fn deserialize_whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<i64, D::Error> {
    deserializer.deserialize_any(WholeNumber)
}

struct WholeNumber;

impl Visitor<'_> for WholeNumber {
    type Value = i64;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<i64, E> {
        Ok(n)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<i64, E> {
        i64::try_from(n).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<i64, E> {
        integral(f).ok_or_else(|| E::invalid_value(de::Unexpected::Float(f), &self))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "deserialize_whole_number")]
        n: i64,
    }

    fn read(body: &str) -> Result<i64, String> {
        serde_json::from_str::<Body>(body)
            .map(|b| b.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_are_read_however_they_are_written() {
        for (body, n) in [
            (r#"{"n": 94082}"#, 94082),
            (r#"{"n": 94082.0}"#, 94082),
            (r#"{"n": 9.4082e4}"#, 94082),
            (r#"{"n": -0.0}"#, 0),
            (r#"{"n": -9223372036854775808}"#, i64::MIN),
            (r#"{"n": 9223372036854775807}"#, i64::MAX),
        ] {
            assert_eq!(read(body), Ok(n), "{body}");
            let value: Value = serde_json::from_str(body).unwrap();
            assert_eq!(whole_number(&value["n"]), Some(n), "{body}");
        }
    }

    #[test]
    fn fractions_big_numbers_and_other_types_are_refused() {
        for body in [
            r#"{"n": 2.5}"#,
            r#"{"n": 9223372036854775808}"#,
            r#"{"n": 9.3e18}"#,
            r#"{"n": 1e400}"#,
            r#"{"n": "2"}"#,
            r#"{"n": null}"#,
        ] {
            let value: Value = serde_json::from_str(body).unwrap_or(json!({"n": "big"}));
            assert_eq!(whole_number(&value["n"]), None, "{body}");
            assert!(read(body).is_err(), "{body}");
        }
        assert_eq!(
            read(r#"{"n": 2.5}"#),
            Err(
                "invalid value: floating point `2.5`, expected a whole number at line 1 column 9"
                    .into()
            )
        );
    }

    // 256 cases each (the default, stated so that the unit tests stay fast).
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_printable_text_pattern_allows_exactly_the_printable_text(
            text in "[ a\\t\\n\\x00-\\x1f\\x7f-\\u{a0}\\u{1680}\\u{2000}-\\u{200b}\\u{2028}\\u{2029}\\u{202f}\\u{205f}\\u{3000}\\u{feff}\\u{e9}\\u{1f600}]{0,4}|\\PC{0,4}|.{0,4}",
        ) {
            let pattern = regex::Regex::new(PRINTABLE_TEXT_PATTERN).unwrap();

            prop_assert_eq!(pattern.is_match(&text), is_printable_text(&text), "{:?}", text);
        }

        // Up to 15 digits, which serde_json reads exactly as a float too.
        #[test]
        fn an_integer_reads_the_same_written_either_way(n in -999_999_999_999_999i64..=999_999_999_999_999) {
            prop_assert_eq!(read(&format!(r#"{{"n": {n}}}"#)), Ok(n));
            prop_assert_eq!(read(&format!(r#"{{"n": {n}.0}}"#)), Ok(n));
            prop_assert_eq!(whole_number(&json!(n as f64)), Some(n));
        }

        #[test]
        fn any_number_is_read_exactly_when_it_is_whole_and_fits(f in any::<f64>()) {
            let whole = f.is_finite() && f.fract() == 0.0 && f >= i64::MIN as f64 && f < 9.3e18;
            let expected = whole.then_some(f as i64).filter(|n| *n as f64 == f);

            prop_assert_eq!(whole_number(&json!(f)), expected);
        }
    }
}
