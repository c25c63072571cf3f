//! Lenient accessors for real-world JSON: numbers stored as strings, `"True"` booleans,
//! dotted paths into nested maps, and files that are "almost JSON" (trailing commas).
use serde_json::Value;
use std::path::Path;

/// A number, or a string holding a number (`"55500"`, `" 8.5 "`).
pub fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Value::Bool(_) | Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A non-negative integer, accepting integral floats and numeric strings.
pub fn uint(v: &Value) -> Option<u64> {
    if let Some(u) = v.as_u64() {
        return Some(u);
    }
    let f = num(v)?;
    if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 {
        Some(f as u64)
    } else {
        None
    }
}

/// A boolean, accepting `"True"`/`"false"`/`"1"`/`0`.
pub fn boolish(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Some(true),
            "false" | "no" | "0" | "off" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A non-empty string (numbers are rendered).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Look up `a.b.c` in nested objects; falls back to a flat key `"a.b.c"` at any level.
pub fn get<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    if let Some(x) = v.get(dotted) {
        return Some(x);
    }
    let (head, rest) = dotted.split_once('.')?;
    get(v.get(head)?, rest)
}

pub fn get_num(v: &Value, dotted: &str) -> Option<f64> {
    get(v, dotted).and_then(num)
}
pub fn get_uint(v: &Value, dotted: &str) -> Option<u64> {
    get(v, dotted).and_then(uint)
}
pub fn get_text(v: &Value, dotted: &str) -> Option<String> {
    get(v, dotted).and_then(text)
}
pub fn get_bool(v: &Value, dotted: &str) -> Option<bool> {
    get(v, dotted).and_then(boolish)
}

/// Flatten nested objects into dotted keys (arrays are leaves).
pub fn flatten(v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    fn rec(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    rec(&key, x, out);
                }
            }
            _ => {
                if !prefix.is_empty() {
                    out.push((prefix.to_string(), v.clone()));
                }
            }
        }
    }
    rec("", v, &mut out);
    out
}

/// Loose equality for configuration values: `"True" == true`, `"10" == 10`, `10 == 10.0`.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
    }
    if (matches!(a, Value::Bool(_)) || matches!(b, Value::Bool(_)))
        && let (Some(x), Some(y)) = (boolish(a), boolish(b))
    {
        return x == y;
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.trim() == y.trim(),
        _ => false,
    }
}

/// Parse JSON; if strict parsing fails, retry after removing trailing commas before `}`/`]`
/// (the published v1.0 Micron system file has one). Returns (value, was_lenient).
pub fn parse_json_lenient(text: &str) -> Result<(Value, bool), String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok((v, false)),
        Err(e) => {
            let fixed = strip_trailing_commas(text);
            serde_json::from_str::<Value>(&fixed)
                .map(|v| (v, true))
                .map_err(|_| e.to_string())
        }
    }
}

fn strip_trailing_commas(s: &str) -> String {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        if c == ',' {
            let next = b[i + 1..].iter().find(|x| !x.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Read and parse a JSON file leniently. Error text is a one-line reason. Inside a validation
/// the file is read and parsed once (see `cache`).
pub fn read_json(path: &Path) -> Result<Value, String> {
    read_json_shared(path).map(std::rc::Rc::unwrap_or_clone)
}

/// As [`read_json`], sharing the cached value instead of copying it.
pub(crate) fn read_json_shared(path: &Path) -> Result<std::rc::Rc<Value>, String> {
    crate::cache::parsed(path, crate::cache::Format::Json, read_json_uncached)
}

fn read_json_uncached(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if is_pruned_placeholder(&bytes) {
        return Err("pruned by staff (placeholder file)".into());
    }
    let text = String::from_utf8_lossy(&bytes);
    parse_json_lenient(&text)
        .map(|(v, _)| v)
        .map_err(|e| format!("invalid JSON: {e}"))
}

/// Read a YAML file into a JSON value (once per validation, see `cache`).
pub fn read_yaml(path: &Path) -> Result<Value, String> {
    crate::cache::parsed(path, crate::cache::Format::Yaml, read_yaml_uncached)
        .map(std::rc::Rc::unwrap_or_clone)
}

fn read_yaml_uncached(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    parse_yaml(&text)
}

pub fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        let s = e.to_string();
        format!("invalid YAML: {}", s.lines().next().unwrap_or(""))
    })
}

/// The 16-byte `PRUNED BY STAFF` placeholders of the v3.0 results repository.
pub fn is_pruned_placeholder(bytes: &[u8]) -> bool {
    bytes.len() <= 32 && String::from_utf8_lossy(bytes).trim() == "PRUNED BY STAFF"
}

/// Parse an ISO-8601 timestamp as written by DLIO / mlpstorage (naive or with offset/Z) into
/// seconds since the epoch (naive times are taken as UTC; only differences matter here).
pub fn parse_time(s: &str) -> Option<f64> {
    use chrono::{DateTime, NaiveDateTime};
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp() as f64 + dt.timestamp_subsec_nanos() as f64 * 1e-9);
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y%m%d_%H%M%S",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            let u = dt.and_utc();
            return Some(u.timestamp() as f64 + u.timestamp_subsec_nanos() as f64 * 1e-9);
        }
    }
    None
}

/// `YYYYMMDD_HHMMSS` directory names.
pub fn is_timestamp_dir(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 15
        && b[8] == b'_'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// Mean of a slice; None when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_as_strings_and_bools() {
        assert_eq!(num(&json!("55500")), Some(55500.0));
        assert_eq!(uint(&json!(" 24 ")), Some(24));
        assert_eq!(boolish(&json!("True")), Some(true));
        assert!(loose_eq(&json!("True"), &json!(true)));
        assert!(loose_eq(&json!("10"), &json!(10)));
        assert!(!loose_eq(&json!("abc"), &json!(1)));
    }

    #[test]
    fn dotted_get_nested_and_flat() {
        let v = json!({"dataset": {"num_files_train": "7"}, "a.b": 3});
        assert_eq!(get_uint(&v, "dataset.num_files_train"), Some(7));
        assert_eq!(get_uint(&v, "a.b"), Some(3));
        assert!(get(&v, "dataset.missing").is_none());
    }

    #[test]
    fn trailing_comma_json_accepted() {
        let (v, lenient) =
            parse_json_lenient("{\"a\": [1, 2,], \"b\": {\"c\": \"x,\",},}").unwrap();
        assert!(lenient);
        assert_eq!(v["b"]["c"], "x,");
    }

    #[test]
    fn times() {
        let a = parse_time("2026-07-13T10:55:20.475175").unwrap();
        let b = parse_time("2026-07-13T10:55:38.246373").unwrap();
        assert!((b - a - 17.771198).abs() < 1e-3);
        assert!(parse_time("2026-07-13T02:48:43Z").is_some());
        assert!(is_timestamp_dir("20260704_050040"));
        assert!(!is_timestamp_dir("run_1"));
    }
}
