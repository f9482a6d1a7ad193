//! JSON values as they enter the runtime: converted without losing what they say, and kept
//! shallow enough that nothing downstream can overflow a stack on them.
//!
//! A caller's value can be nested arbitrarily deep, and serializing or dropping one recurses
//! once per level: 10,000 levels overflow a 2 MiB thread. So depth is checked where a value
//! enters, without recursion, and a refused value is taken apart without recursion too.
//! serde_json reads back at most 128 levels; values stay within [`MAX_VALUE_DEPTH`] so the
//! envelope around them (batch, event, properties) still fits.
//!
//! It also writes the pieces of JSON text the runtime assembles by hand (string literals, the
//! members of an object without its braces), so that every module writing JSON text depends on
//! this leaf and on nothing else.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and objects a property value may have.
pub const MAX_VALUE_DEPTH: usize = 100;

/// Why a value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusedValue {
    /// A NaN or an infinity: JSON has no such number.
    #[error("a NaN or infinite number (JSON has none)")]
    NotFinite,
    /// Arrays and objects nested deeper than [`MAX_VALUE_DEPTH`].
    #[error("nested deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep,
}

/// A value a property can take: everything serde_json's `Value` converts from, except that a
/// NaN or an infinity is refused instead of silently becoming `null`.
pub trait PropertyValue {
    /// The JSON value, or why there is none.
    fn into_json(self) -> Result<Value, RefusedValue>;

    /// Appends the compact JSON text of [`into_json`](Self::into_json)'s value to `out`, checked
    /// the same way (nested at most [`MAX_VALUE_DEPTH`] levels); strings, numbers and booleans
    /// are written directly, without building a `Value`. On a refusal `out` is unchanged.
    fn write_json(self, out: &mut String) -> Result<(), RefusedValue>
    where
        Self: Sized,
    {
        write_value(out, &checked(self)?);
        Ok(())
    }
}

/// Appends `value`'s compact JSON text.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        // The common kinds directly: no intermediate string.
        Value::String(s) => push_json_string(out, s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        // `Value`'s Display is its compact JSON text.
        other => {
            use std::fmt::Write;
            let _ = write!(out, "{other}");
        }
    }
}

impl PropertyValue for Value {
    fn into_json(self) -> Result<Value, RefusedValue> {
        Ok(self)
    }
}

impl PropertyValue for &Value {
    fn into_json(self) -> Result<Value, RefusedValue> {
        Ok(self.clone())
    }
}

impl PropertyValue for f64 {
    fn into_json(self) -> Result<Value, RefusedValue> {
        Number::from_f64(self)
            .map(Value::Number)
            .ok_or(RefusedValue::NotFinite)
    }

    fn write_json(self, out: &mut String) -> Result<(), RefusedValue> {
        use std::fmt::Write;
        let number = Number::from_f64(self).ok_or(RefusedValue::NotFinite)?;
        let _ = write!(out, "{number}");
        Ok(())
    }
}

impl PropertyValue for f32 {
    fn into_json(self) -> Result<Value, RefusedValue> {
        f64::from(self).into_json()
    }
}

/// Types whose conversion to `Value` cannot lose anything.
macro_rules! exact {
    ($($t:ty),* $(,)?) => {$(
        impl PropertyValue for $t {
            fn into_json(self) -> Result<Value, RefusedValue> {
                Ok(Value::from(self))
            }
        }
    )*};
}

exact!(Cow<'_, str>, Number, Map<String, Value>, ());

/// Types whose conversion cannot lose anything and whose text is their `Display`.
macro_rules! exact_displayed {
    ($($t:ty),* $(,)?) => {$(
        impl PropertyValue for $t {
            fn into_json(self) -> Result<Value, RefusedValue> {
                Ok(Value::from(self))
            }

            fn write_json(self, out: &mut String) -> Result<(), RefusedValue> {
                use std::fmt::Write;
                let _ = write!(out, "{self}");
                Ok(())
            }
        }
    )*};
}

exact_displayed!(bool, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl PropertyValue for &str {
    fn into_json(self) -> Result<Value, RefusedValue> {
        Ok(Value::from(self))
    }

    fn write_json(self, out: &mut String) -> Result<(), RefusedValue> {
        push_json_string(out, self);
        Ok(())
    }
}

impl PropertyValue for String {
    fn into_json(self) -> Result<Value, RefusedValue> {
        Ok(Value::String(self))
    }

    fn write_json(self, out: &mut String) -> Result<(), RefusedValue> {
        push_json_string(out, &self);
        Ok(())
    }
}

impl PropertyValue for &String {
    fn into_json(self) -> Result<Value, RefusedValue> {
        Ok(Value::String(self.clone()))
    }

    fn write_json(self, out: &mut String) -> Result<(), RefusedValue> {
        push_json_string(out, self);
        Ok(())
    }
}

impl<T: PropertyValue> PropertyValue for Option<T> {
    fn into_json(self) -> Result<Value, RefusedValue> {
        self.map_or(Ok(Value::Null), PropertyValue::into_json)
    }
}

impl<T: PropertyValue> PropertyValue for Vec<T> {
    fn into_json(self) -> Result<Value, RefusedValue> {
        self.into_iter()
            .map(PropertyValue::into_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }
}

impl<T: PropertyValue + Clone> PropertyValue for &[T] {
    fn into_json(self) -> Result<Value, RefusedValue> {
        self.to_vec().into_json()
    }
}

impl<T: PropertyValue, const N: usize> PropertyValue for [T; N] {
    fn into_json(self) -> Result<Value, RefusedValue> {
        Vec::from(self).into_json()
    }
}

/// `value` converted and checked: within [`MAX_VALUE_DEPTH`] and finite. A refused deep value
/// is taken apart here, without recursion.
pub(crate) fn checked(value: impl PropertyValue) -> Result<Value, RefusedValue> {
    let value = value.into_json()?;
    admit(value)
}

/// Sets `key` to `value` in `map` if it passes [`checked`]; otherwise counts it in `refused`.
pub(crate) fn insert_checked(
    map: &mut Map<String, Value>,
    refused: &mut u32,
    key: impl Into<String>,
    value: impl PropertyValue,
) {
    match checked(value) {
        Ok(value) => {
            map.insert(key.into(), value);
        }
        Err(_) => *refused = refused.saturating_add(1),
    }
}

/// `value` if it is within [`MAX_VALUE_DEPTH`]; otherwise it is taken apart without recursion
/// and refused.
pub(crate) fn admit(value: Value) -> Result<Value, RefusedValue> {
    if nests_deeper_than(&value, MAX_VALUE_DEPTH) {
        dispose(value);
        return Err(RefusedValue::TooDeep);
    }
    Ok(value)
}

/// Whether arrays and objects nest more than `limit` levels in `value` (a scalar is level 0,
/// `[1]` level 1). Walks with a stack of its own, never the thread's.
pub(crate) fn nests_deeper_than(value: &Value, limit: usize) -> bool {
    // Most values are scalars: they cost no allocation on the way in.
    if !is_container(value) {
        return false;
    }
    // Containers only, each with its own level.
    let mut pending: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((value, depth)) = pending.pop() {
        if depth > limit {
            return true;
        }
        let deeper = |child: &&Value| is_container(child);
        match value {
            Value::Array(items) => {
                pending.extend(items.iter().filter(deeper).map(|c| (c, depth + 1)));
            }
            Value::Object(members) => {
                pending.extend(members.values().filter(deeper).map(|c| (c, depth + 1)));
            }
            _ => {}
        }
    }
    false
}

fn is_container(value: &Value) -> bool {
    matches!(value, Value::Array(_) | Value::Object(_))
}

/// Drops `value` one level at a time: the default drop recurses once per level.
pub(crate) fn dispose(value: Value) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(members) => pending.extend(members.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Keeps only the members of `map` that are within [`MAX_VALUE_DEPTH`]; returns how many were
/// taken out (they are disposed of without recursion).
pub(crate) fn retain_admissible(map: &mut Map<String, Value>) -> u32 {
    let deep: Vec<String> = map
        .iter()
        .filter(|(_, v)| nests_deeper_than(v, MAX_VALUE_DEPTH))
        .map(|(k, _)| k.clone())
        .collect();
    for key in &deep {
        if let Some(value) = map.remove(key) {
            dispose(value);
        }
    }
    u32::try_from(deep.len()).unwrap_or(u32::MAX)
}

/// An array nested `depth` levels deep, built without recursion (for tests).
#[cfg(test)]
pub(crate) fn nested(depth: usize) -> Value {
    let mut value = Value::Null;
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

/// `{…}` for `map`.
fn serialize_object(map: &Map<String, Value>) -> String {
    // Serializing a map of JSON values into a string cannot fail.
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

/// `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// The members of a JSON object without the surrounding braces: `"a":1,"b":2`.
pub(crate) fn object_body(map: &Map<String, Value>) -> String {
    let mut object = serialize_object(map);
    // Drop the braces in place: no second allocation.
    object.pop();
    object.remove(0);
    object
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Every byte JSON makes us escape is ASCII, and an ASCII byte is never part of a longer
    // UTF-8 sequence: the text is walked by bytes, not decoded into chars, and each slice
    // starts and ends on a char boundary.
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_is_measured_without_recursion() {
        assert!(!nests_deeper_than(&json!(1), 0));
        assert!(nests_deeper_than(&json!([1]), 0));
        assert!(!nests_deeper_than(&json!({"a": [1]}), 2));
        assert!(nests_deeper_than(&json!({"a": [1]}), 1));
        let deep = nested(1_000_000);
        assert!(nests_deeper_than(&deep, MAX_VALUE_DEPTH));
        assert_eq!(admit(deep), Err(RefusedValue::TooDeep));
        assert!(admit(nested(MAX_VALUE_DEPTH)).is_ok());
    }

    #[test]
    fn non_finite_numbers_are_refused_not_nulled() {
        assert_eq!(f64::NAN.into_json(), Err(RefusedValue::NotFinite));
        assert_eq!(f32::INFINITY.into_json(), Err(RefusedValue::NotFinite));
        assert_eq!(
            vec![1.0, f64::NEG_INFINITY].into_json(),
            Err(RefusedValue::NotFinite)
        );
        assert_eq!(1.5f64.into_json(), Ok(json!(1.5)));
        assert_eq!(Some("x").into_json(), Ok(json!("x")));
        assert_eq!(None::<u8>.into_json(), Ok(Value::Null));
    }

    #[test]
    fn deep_members_are_taken_out() {
        let mut map = Map::new();
        map.insert("ok".into(), json!({"a": 1}));
        map.insert("deep".into(), nested(500_000));
        assert_eq!(retain_admissible(&mut map), 1);
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn json_strings_are_escaped_as_before() {
        for (s, json) in [
            ("", r#""""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\n\r\t", r#""\n\r\t""#),
            ("\u{0}\u{8}\u{c}\u{1f}", r#""\u0000\u0008\u000c\u001f""#),
            ("é\u{7f}✓\"", "\"é\u{7f}✓\\\"\""),
        ] {
            assert_eq!(json_string(s), json, "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips(s in proptest::prelude::any::<String>()) {
            let out = json_string(&s);
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).ok(), Some(s));
        }
    }

    #[test]
    fn json_strings_round_trip() {
        for s in ["", "plain", "q\"b\\s", "ctl\u{1}\u{1f}\t\r\n", "ünïcødé ✓"] {
            let mut out = String::new();
            push_json_string(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }
}
