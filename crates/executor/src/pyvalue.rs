//! Plain Python data decoded from the harness's tagged encoding, and the
//! Python semantics a test needs on it (`==`, truth, `math.isclose`),
//! evaluated here, where the candidate cannot reach.
//!
//! The child encodes a returned value with only the builtin types' own C
//! methods (`encode_value` in the harness); anything else arrives as
//! [`PyValue::Unsupported`], which equals nothing. So an always-equal
//! object, a patched `__eq__` or a forged result can never make a test
//! whose expected value the child never saw come out true.

use std::cmp::Ordering;

use serde_json::Value;

/// One decoded value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PyValue {
    None,
    Bool(bool),
    /// Sign and lower-case hex magnitude without leading zeros ("0" for 0).
    Int(bool, String),
    Float(f64),
    Complex(f64, f64),
    Str(Vec<u32>),
    Bytes(String),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    Set(Vec<PyValue>),
    Dict(Vec<(PyValue, PyValue)>),
    Deque(Vec<PyValue>),
    /// A value the child could not encode as plain data: its type name,
    /// and its truth when a builtin (C) type could tell it without user
    /// code.
    Unsupported(String, Option<bool>),
}

impl PyValue {
    /// Decodes the harness's encoding; `None` if it is malformed.
    pub(crate) fn decode(v: &Value) -> Option<PyValue> {
        Some(match v {
            Value::Null => PyValue::None,
            Value::Bool(b) => PyValue::Bool(*b),
            Value::String(s) => PyValue::Str(s.chars().map(u32::from).collect()),
            Value::Object(o) => PyValue::Unsupported(
                o.get("unsupported")?.as_str()?.to_string(),
                o.get("truth").and_then(Value::as_bool),
            ),
            Value::Array(a) => {
                let items = |i: usize| -> Option<Vec<PyValue>> {
                    a.get(i)?.as_array()?.iter().map(PyValue::decode).collect()
                };
                let bits = |i: usize| a.get(i).and_then(Value::as_u64).map(f64::from_bits);
                match a.first()?.as_str()? {
                    "int" => {
                        let hex = a.get(1)?.as_str()?;
                        let (neg, mag) = match hex.strip_prefix('-') {
                            Some(m) => (true, m),
                            None => (false, hex),
                        };
                        if mag.is_empty() || !mag.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return None;
                        }
                        int(neg, mag)
                    }
                    "float" => PyValue::Float(bits(1)?),
                    "complex" => PyValue::Complex(bits(1)?, bits(2)?),
                    "ustr" => PyValue::Str(
                        a.get(1)?
                            .as_array()?
                            .iter()
                            .map(|c| c.as_u64().and_then(|c| u32::try_from(c).ok()))
                            .collect::<Option<_>>()?,
                    ),
                    "bytes" => PyValue::Bytes(a.get(1)?.as_str()?.to_string()),
                    "list" => PyValue::List(items(1)?),
                    "tuple" => PyValue::Tuple(items(1)?),
                    "set" => PyValue::Set(items(1)?),
                    "deque" => PyValue::Deque(items(1)?),
                    "dict" => PyValue::Dict(
                        a.get(1)?
                            .as_array()?
                            .iter()
                            .map(|kv| {
                                let kv = kv.as_array()?;
                                Some((PyValue::decode(kv.first()?)?, PyValue::decode(kv.get(1)?)?))
                            })
                            .collect::<Option<_>>()?,
                    ),
                    _ => return None,
                }
            }
            Value::Number(_) => return None,
        })
    }

    /// Python's `bool(self)`; `None` for an unsupported value.
    pub(crate) fn truthy(&self) -> Option<bool> {
        Some(match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(_, mag) => mag != "0",
            PyValue::Float(f) => *f != 0.0,
            PyValue::Complex(re, im) => *re != 0.0 || *im != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::Bytes(b) => !b.is_empty(),
            PyValue::List(v) | PyValue::Tuple(v) | PyValue::Set(v) | PyValue::Deque(v) => {
                !v.is_empty()
            }
            PyValue::Dict(v) => !v.is_empty(),
            PyValue::Unsupported(_, truth) => return *truth,
        })
    }

    /// The value as a float, for `math.isclose` (ints, bools and floats).
    pub(crate) fn as_float(&self) -> Option<f64> {
        match self {
            PyValue::Bool(b) => Some(f64::from(u8::from(*b))),
            PyValue::Float(f) => Some(*f),
            PyValue::Int(neg, mag) => {
                let m = mag
                    .bytes()
                    .fold(0f64, |acc, d| acc * 16.0 + f64::from(hex_digit(d)));
                Some(if *neg { -m } else { m })
            }
            _ => None,
        }
    }
}

/// Deserialises a field that is there, even as `null` (Python's None),
/// as `Some`; with `#[serde(default)]` an absent one stays `None`.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    use serde::Deserialize;
    Value::deserialize(d).map(Some)
}

fn int(neg: bool, mag: &str) -> PyValue {
    let mag = mag.trim_start_matches('0').to_ascii_lowercase();
    if mag.is_empty() {
        PyValue::Int(false, "0".into())
    } else {
        PyValue::Int(neg, mag)
    }
}

fn hex_digit(d: u8) -> u8 {
    (d as char).to_digit(16).unwrap_or(0) as u8
}

/// Python's `a == b` on plain data.
pub(crate) fn py_eq(a: &PyValue, b: &PyValue) -> bool {
    use PyValue::*;
    match (a, b) {
        (Unsupported(..), _) | (_, Unsupported(..)) => false,
        (List(x), List(y)) | (Tuple(x), Tuple(y)) | (Deque(x), Deque(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Set(x), Set(y)) => x.len() == y.len() && x.iter().all(|p| y.iter().any(|q| py_eq(p, q))),
        (Dict(x), Dict(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| py_eq(k, k2))
                        .is_some_and(|(_, v2)| py_eq(v, v2))
                })
        }
        (Str(x), Str(y)) => x == y,
        (Bytes(x), Bytes(y)) => x == y,
        (None, None) => true,
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x.eq(&y),
            _ => false,
        },
    }
}

/// A number in a form where Python's cross-type equality is plain
/// equality: integral values as exact integers, others as floats.
#[derive(Debug, PartialEq)]
enum Number {
    Int(bool, String),
    Real(f64),
    Complex(f64, f64),
}

impl Number {
    fn eq(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Real(x), Number::Real(y)) => x.partial_cmp(y) == Some(Ordering::Equal),
            (Number::Complex(a, b), Number::Complex(c, d)) => a == c && b == d,
            (x, y) => x == y,
        }
    }
}

fn number(v: &PyValue) -> Option<Number> {
    Some(match v {
        PyValue::Bool(b) => Number::Int(false, if *b { "1" } else { "0" }.into()),
        PyValue::Int(neg, mag) => Number::Int(*neg, mag.clone()),
        PyValue::Float(f) => real(*f),
        PyValue::Complex(re, 0.0) => real(*re),
        PyValue::Complex(re, im) => Number::Complex(*re, *im),
        _ => return None,
    })
}

fn real(f: f64) -> Number {
    match exact_integer(f) {
        Some((neg, mag)) => Number::Int(neg, mag),
        None => Number::Real(f),
    }
}

/// A finite integral float as sign and hex magnitude.
fn exact_integer(f: f64) -> Option<(bool, String)> {
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    if f == 0.0 {
        return Some((false, "0".into()));
    }
    let bits = f.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64;
    let mantissa = if exponent == 0 {
        (bits & ((1 << 52) - 1)) << 1
    } else {
        (bits & ((1 << 52) - 1)) | (1 << 52)
    };
    let shift = exponent - 1075; // value = mantissa * 2^shift
    let mut binary = format!("{mantissa:b}");
    if shift >= 0 {
        binary.push_str(&"0".repeat(shift as usize));
    } else {
        binary.truncate(binary.len() - (-shift) as usize);
    }
    let pad = (4 - binary.len() % 4) % 4;
    let binary = format!("{}{binary}", "0".repeat(pad));
    let hex: String = binary
        .as_bytes()
        .chunks(4)
        .map(|c| {
            let n = c.iter().fold(0u32, |acc, b| acc * 2 + u32::from(b - b'0'));
            char::from_digit(n, 16).expect("a nibble")
        })
        .collect();
    let hex = hex.trim_start_matches('0').to_string();
    Some((f < 0.0, hex))
}

/// Python's `math.isclose(a, b, rel_tol=rel, abs_tol=abs)`.
pub(crate) fn isclose(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    let diff = (b - a).abs();
    diff <= (rel * b).abs() || diff <= (rel * a).abs() || diff <= abs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(j: Value) -> PyValue {
        PyValue::decode(&j).expect("valid encoding")
    }

    fn float(f: f64) -> Value {
        json!(["float", f.to_bits()])
    }

    #[test]
    fn numbers_compare_across_types_like_python() {
        let one = v(json!(["int", "1"]));
        assert!(py_eq(&one, &v(json!(true))));
        assert!(py_eq(&one, &v(float(1.0))));
        assert!(py_eq(
            &one,
            &v(json!(["complex", 1f64.to_bits(), 0f64.to_bits()]))
        ));
        assert!(!py_eq(&one, &v(float(1.5))));
        assert!(py_eq(&v(json!(["int", "-0"])), &v(float(-0.0))));
        let big = v(json!(["int", format!("2{}", "0".repeat(27))])); // 2**109
        assert!(py_eq(&big, &v(float(2f64.powi(109)))));
        assert!(!py_eq(&big, &v(float(2f64.powi(108)))));
        assert!(py_eq(
            &v(json!(["int", "-20000000000000"])),
            &v(float(-(2f64.powi(53))))
        ));
        assert!(!py_eq(&v(float(f64::NAN)), &v(float(f64::NAN))));
        assert!(!py_eq(&one, &v(json!("1"))));
    }

    #[test]
    fn containers_compare_like_python() {
        let list = v(json!(["list", [["int", "1"], "a"]]));
        let tuple = v(json!(["tuple", [["int", "1"], "a"]]));
        assert!(py_eq(&list, &v(json!(["list", [true, "a"]]))));
        assert!(!py_eq(&list, &tuple), "a list never equals a tuple");
        let set = v(json!(["set", [["int", "1"], ["int", "2"]]]));
        assert!(py_eq(
            &set,
            &v(json!(["set", [["int", "2"], ["int", "1"]]]))
        ));
        let d1 = v(json!(["dict", [["a", ["int", "1"]], ["b", null]]]));
        let d2 = v(json!(["dict", [["b", null], ["a", float(1.0)]]]));
        assert!(py_eq(&d1, &d2), "dicts ignore order");
        let odd = v(json!({"unsupported": "Same"}));
        assert!(!py_eq(&odd, &odd), "an unsupported value equals nothing");
        assert_eq!(odd.truthy(), None);
        let matched = v(json!({"unsupported": "Match", "truth": true}));
        assert_eq!(matched.truthy(), Some(true));
    }

    #[test]
    fn truth_and_closeness() {
        assert_eq!(v(json!(["list", []])).truthy(), Some(false));
        assert_eq!(v(json!(["int", "0"])).truthy(), Some(false));
        assert_eq!(v(json!("x")).truthy(), Some(true));
        assert!(isclose(0.1 + 0.2, 0.3, 1e-9, 0.0));
        assert!(!isclose(1.0, 1.1, 1e-9, 0.0));
        assert!(isclose(1.0, 1.05, 0.0, 0.1));
        assert_eq!(v(json!(["int", "-ff"])).as_float(), Some(-255.0));
    }
}
