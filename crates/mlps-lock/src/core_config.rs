//! The `core-config-v1` hash: which workload a run executed, so runs fall into the reference's
//! comparability classes.
//!
//! The rule, byte for byte as the reference computes it:
//! 1. flatten the resolved parameters to dotted keys (`{"a":{"b":1}}` → `a.b`; lists are leaves;
//!    an empty mapping contributes nothing);
//! 2. keep the keys the family's allowlist admits (`core_config_keys.yaml`, embedded unchanged:
//!    `prefix.*` entries match by prefix, `exclude` removes exact keys), sorted;
//! 3. canonicalize each value so `7`, `7.0` and `"7"` hash alike: floats with an integral value
//!    become integers, strings are trimmed and `"true"`/`"false"` (any case) become booleans,
//!    numeric strings become numbers (Python `int()` first, then `float()`), lists element-wise;
//!    mappings inside lists are left as they are;
//! 4. serialize as Python's `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)`
//!    (floats in Python `repr` form, non-ASCII as `\uXXXX`, `NaN`/`Infinity` tokens);
//! 5. SHA-256 of the UTF-8 bytes, first 16 hex digits.
//!
//! Known divergence: Python's `int()`/`float()` also accept non-ASCII Unicode digits in strings;
//! here such strings stay strings. No parameter in any shipped workload contains one.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::LockError;

/// The algorithm tag stamped next to every hash.
pub const CORE_CONFIG_ALGORITHM: &str = "core-config-v1";
/// The stamp for anything that cannot be determined (never `null`).
pub const UNKNOWN: &str = "unknown";

const ALLOWLIST_YAML: &str = include_str!("../data/core_config_keys.yaml");
const ALLOWLIST_SCHEMA: &str = "mlps-core-config-allowlist/1";

/// The `core_config` block of `provenance.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreConfig {
    pub algorithm: String,
    /// `training@1`, `checkpointing@1`, or `unknown` for families without an allowlist.
    pub allowlist: String,
    /// 16 hex digits, or `unknown`.
    pub hash: String,
    /// The exact keys hashed, sorted, so the value is reproducible from the leaf alone.
    pub keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AllowlistTable {
    schema: String,
    families: BTreeMap<String, String>,
    allowlists: BTreeMap<String, AllowlistSpec>,
}

#[derive(Debug, Deserialize)]
struct AllowlistSpec {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

fn allowlists() -> Result<&'static AllowlistTable, LockError> {
    static TABLE: OnceLock<Result<AllowlistTable, String>> = OnceLock::new();
    let parsed = TABLE.get_or_init(|| {
        let table: AllowlistTable =
            serde_saphyr::from_str(ALLOWLIST_YAML).map_err(|e| e.to_string())?;
        if table.schema != ALLOWLIST_SCHEMA {
            return Err(format!("unsupported schema {}", table.schema));
        }
        for (family, id) in &table.families {
            if !table.allowlists.contains_key(id) {
                return Err(format!("family {family} names unknown allowlist {id}"));
            }
        }
        Ok(table)
    });
    parsed.as_ref().map_err(|e| LockError::Allowlist(e.clone()))
}

/// The allowlist id used for a benchmark family (`training` → `training@1`), if it has one.
pub fn allowlist_for_family(family: &str) -> Result<Option<String>, LockError> {
    Ok(allowlists()?.families.get(family).cloned())
}

/// Flattens nested mappings to dotted keys, in document order.
pub fn flatten_parameters(params: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(value: &'a Value, prefix: &str, out: &mut Vec<(String, &'a Value)>) {
        if let Value::Object(map) = value {
            for (key, child) in map {
                let dotted = format!("{prefix}{key}");
                if child.is_object() {
                    walk(child, &format!("{dotted}."), out);
                } else {
                    out.push((dotted, child));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(params, "", &mut out);
    out
}

fn key_allowed(key: &str, spec: &AllowlistSpec) -> bool {
    if spec.exclude.iter().any(|e| e == key) {
        return false;
    }
    spec.include
        .iter()
        .any(|entry| match entry.strip_suffix('*') {
            Some(prefix) if entry.ends_with(".*") => key.starts_with(prefix),
            _ => key == entry,
        })
}

/// The `core_config` block for a run of `family` (`training`, `checkpointing`, `kv_cache`,
/// `vector_database`) with these resolved parameters (the nested DLIO config).
pub fn compute_core_config(parameters: &Value, family: &str) -> Result<CoreConfig, LockError> {
    let table = allowlists()?;
    let Some(list_id) = table.families.get(family) else {
        return Ok(CoreConfig {
            algorithm: CORE_CONFIG_ALGORITHM.to_string(),
            allowlist: UNKNOWN.to_string(),
            hash: UNKNOWN.to_string(),
            keys: Vec::new(),
        });
    };
    let spec = &table.allowlists[list_id];
    // Later duplicates of a dotted key win, as in a Python dict built from the same walk.
    let selected: BTreeMap<String, &Value> = flatten_parameters(parameters)
        .into_iter()
        .filter(|(k, _)| key_allowed(k, spec))
        .collect();
    let keys: Vec<String> = selected.keys().cloned().collect();
    let hash = if keys.is_empty() {
        UNKNOWN.to_string()
    } else {
        core_config_hash(&selected)
    };
    Ok(CoreConfig {
        algorithm: CORE_CONFIG_ALGORITHM.to_string(),
        allowlist: list_id.clone(),
        hash,
        keys,
    })
}

/// SHA-256 of [`canonical_json`] of `mapping`, first 16 hex digits.
pub fn core_config_hash(mapping: &BTreeMap<String, &Value>) -> String {
    let digest = Sha256::digest(canonical_json(mapping).as_bytes());
    hex::encode(digest)[..16].to_string()
}

/// The canonical JSON text hashed by `core-config-v1` (see the module documentation).
pub fn canonical_json(mapping: &BTreeMap<String, &Value>) -> String {
    let mut out = String::from("{");
    // BTreeMap<String> iterates in byte order of UTF-8, which is code point order: Python's sort.
    for (i, (key, value)) in mapping.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(&mut out, key);
        out.push(':');
        write_canon(&mut out, value);
    }
    out.push('}');
    out
}

/// A value after canonicalization, ready to print.
enum Canon<'a> {
    Bool(bool),
    /// Exact decimal integer text (Python ints are unbounded).
    Int(String),
    Float(f64),
    Str(String),
    /// Printed without canonicalization (null, mappings inside lists).
    Raw(&'a Value),
}

fn write_canon(out: &mut String, value: &Value) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canon(out, item);
            }
            out.push(']');
        }
        other => write_canon_scalar(out, canon_scalar(other)),
    }
}

fn canon_scalar(value: &Value) -> Canon<'_> {
    match value {
        Value::Bool(b) => Canon::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Canon::Int(i.to_string())
            } else if let Some(u) = n.as_u64() {
                Canon::Int(u.to_string())
            } else {
                canon_float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => canon_string(s),
        _ => Canon::Raw(value),
    }
}

fn canon_float(f: f64) -> Canon<'static> {
    if f.is_finite() && f.fract() == 0.0 {
        Canon::Int(integral_float_text(f))
    } else {
        Canon::Float(f)
    }
}

/// Exact decimal text of an integral float, as Python's `int(f)` prints it.
fn integral_float_text(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string(); // int(-0.0) is 0
    }
    // With an explicit precision Rust prints the exact binary value, not the shortest digits.
    format!("{f:.0}")
}

fn python_strip(s: &str) -> &str {
    // str.strip() also removes the ASCII separators U+001C..U+001F, which Rust does not.
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

fn canon_string(value: &str) -> Canon<'static> {
    let s = python_strip(value);
    let low = s.to_lowercase();
    if low == "true" || low == "false" {
        return Canon::Bool(low == "true");
    }
    if let Some(int_text) = python_int(s) {
        return Canon::Int(int_text);
    }
    match python_float(s) {
        Some(f) => canon_float(f),
        None => Canon::Str(s.to_string()),
    }
}

/// Removes PEP 515 underscores when each sits between two digits; `None` if one is misplaced.
fn strip_digit_underscores(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let before = i > 0 && chars[i - 1].is_ascii_digit();
            let after = chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
            if !(before && after) {
                return None;
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Python `int(s)` for an already stripped string: normalized decimal text, or `None`.
fn python_int(s: &str) -> Option<String> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits = strip_digit_underscores(digits)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Some("0".to_string());
    }
    Some(if negative {
        format!("-{trimmed}")
    } else {
        trimmed.to_string()
    })
}

/// Python `float(s)` for an already stripped string.
fn python_float(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first()? {
        b'-' => (-1.0, &s[1..]),
        b'+' => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    let cleaned = strip_digit_underscores(body)?;
    // Grammar: digits [. digits] | . digits, then optional e[+-]digits. Checked here so that
    // Rust's parser never sees a form Python would reject.
    let bytes = cleaned.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    cleaned.parse::<f64>().ok().map(|f| sign * f)
}

/// Python's `repr(float)`: shortest round-trip digits; exponent form when the decimal exponent is
/// below -4 or at least 16 (`1e-05`, `1e+16`); otherwise positional with at least one fraction digit.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let shortest = format!("{:e}", f.abs()); // shortest round-trip digits, e.g. "1.5e-7"
    // Among equally short candidates Python picks the one nearest the exact binary value (ties
    // to even); Rust's shortest mode may pick the other neighbour. The correctly rounded
    // rendering at the same length is Python's choice whenever it round-trips.
    let sig_digits = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let rounded = format!("{:.*e}", sig_digits.saturating_sub(1), f.abs());
    let sci = if rounded.parse::<f64>() == Ok(f.abs()) {
        rounded
    } else {
        shortest
    };
    let (mantissa, exp_text) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp_text.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{exp_sign}{:02}", exp.abs());
    }
    if exp >= 0 {
        let int_len = exp as usize + 1;
        let (int_part, frac_part) = if digits.len() > int_len {
            (digits[..int_len].to_string(), digits[int_len..].to_string())
        } else {
            (format!("{digits:0<int_len$}"), "0".to_string())
        };
        format!("{sign}{int_part}.{frac_part}")
    } else {
        let zeros = "0".repeat((-exp - 1) as usize);
        format!("{sign}0.{zeros}{digits}")
    }
}

fn write_canon_scalar(out: &mut String, canon: Canon<'_>) {
    match canon {
        Canon::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Canon::Int(text) => out.push_str(&text),
        Canon::Float(f) => out.push_str(&python_float_repr(f)),
        Canon::Str(s) => write_json_string(out, &s),
        Canon::Raw(v) => write_python_json(out, v),
    }
}

/// `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)` without any
/// canonicalization (used for mappings nested in lists, which the reference leaves as they are).
fn write_python_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                out.push_str(&python_float_repr(n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_python_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_python_json(out, v);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Python's encoder writes it with `ensure_ascii=True`.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon_text(v: Value) -> String {
        let mut m = BTreeMap::new();
        m.insert("k".to_string(), &v);
        canonical_json(&m)
    }

    #[test]
    fn canonicalizes_like_the_reference() {
        assert_eq!(canon_text(json!(7)), r#"{"k":7}"#);
        assert_eq!(canon_text(json!(7.0)), r#"{"k":7}"#);
        assert_eq!(canon_text(json!(" 7 ")), r#"{"k":7}"#);
        assert_eq!(canon_text(json!("7.0")), r#"{"k":7}"#);
        assert_eq!(canon_text(json!("1_000")), r#"{"k":1000}"#);
        assert_eq!(canon_text(json!("-007")), r#"{"k":-7}"#);
        assert_eq!(canon_text(json!("True")), r#"{"k":true}"#);
        assert_eq!(canon_text(json!("FALSE")), r#"{"k":false}"#);
        assert_eq!(canon_text(json!("1e3")), r#"{"k":1000}"#);
        assert_eq!(canon_text(json!("0.5")), r#"{"k":0.5}"#);
        assert_eq!(canon_text(json!("1e-5")), r#"{"k":1e-05}"#);
        assert_eq!(canon_text(json!("inf")), r#"{"k":Infinity}"#);
        assert_eq!(canon_text(json!("nan")), r#"{"k":NaN}"#);
        assert_eq!(
            canon_text(json!("1e30")),
            r#"{"k":1000000000000000019884624838656}"#
        );
        assert_eq!(canon_text(json!("_1")), r#"{"k":"_1"}"#);
        assert_eq!(canon_text(json!("1__0")), r#"{"k":"1__0"}"#);
        assert_eq!(canon_text(json!("pytorch")), r#"{"k":"pytorch"}"#);
        assert_eq!(canon_text(json!("é\"\nx\n")), r#"{"k":"\u00e9\"\nx"}"#);
        assert_eq!(canon_text(json!("😀")), r#"{"k":"\ud83d\ude00"}"#);
        assert_eq!(canon_text(json!(null)), r#"{"k":null}"#);
        assert_eq!(
            canon_text(json!([1.0, "2", [" true "], {"b": 1.0, "a": "2"}])),
            r#"{"k":[1,2,[true],{"a":"2","b":1.0}]}"#
        );
        assert_eq!(canon_text(json!(-0.0)), r#"{"k":0}"#);
        assert_eq!(
            canon_text(json!(u64::MAX)),
            format!(r#"{{"k":{}}}"#, u64::MAX)
        );
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.1, "0.1"),
            (0.04755, "0.04755"),
            (114660.07, "114660.07"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (123456789012345.6, "123456789012345.6"),
            (7.0, "7.0"),
            (-2.5, "-2.5"),
            (1e15, "1000000000000000.0"),
        ];
        for (f, text) in cases {
            assert_eq!(python_float_repr(f), text, "{f}");
        }
    }

    #[test]
    fn allowlist_selection_and_unknown_families() {
        let params = json!({
            "framework": "pytorch",
            "model": {"name": "x", "parallelism": {"data": 2}},
            "checkpoint": {"checkpoint_folder": "/a", "fsync": true, "num_checkpoints_write": 10},
            "reader": {"read_threads": 8, "batch_size": 4},
            "storage": {"storage_root": "/mnt"},
            "dataset": {"num_files_train": 10, "format": "npz"},
            "empty": {}
        });
        let training = compute_core_config(&params, "training").unwrap();
        assert_eq!(training.allowlist, "training@1");
        assert_eq!(
            training.keys,
            [
                "checkpoint.fsync",
                "checkpoint.num_checkpoints_write",
                "dataset.format",
                "framework",
                "model.name",
                "model.parallelism.data",
                "reader.batch_size"
            ]
        );
        let ckpt = compute_core_config(&params, "checkpointing").unwrap();
        assert_eq!(
            ckpt.keys,
            [
                "checkpoint.fsync",
                "framework",
                "model.name",
                "model.parallelism.data"
            ]
        );
        // A site path or a tunable never changes the hash.
        let mut moved = params.clone();
        moved["checkpoint"]["checkpoint_folder"] = json!("/elsewhere");
        moved["reader"]["read_threads"] = json!(64);
        assert_eq!(
            compute_core_config(&moved, "training").unwrap().hash,
            training.hash
        );
        // "4" and 4.0 are the same batch size.
        moved["reader"]["batch_size"] = json!("4");
        assert_eq!(
            compute_core_config(&moved, "training").unwrap().hash,
            training.hash
        );
        moved["reader"]["batch_size"] = json!(5);
        assert_ne!(
            compute_core_config(&moved, "training").unwrap().hash,
            training.hash
        );
        let kv = compute_core_config(&params, "kv_cache").unwrap();
        assert_eq!(
            (kv.allowlist.as_str(), kv.hash.as_str()),
            (UNKNOWN, UNKNOWN)
        );
        let none =
            compute_core_config(&json!({"reader": {"read_threads": 1}}), "training").unwrap();
        assert_eq!(none.hash, UNKNOWN);
        assert!(none.keys.is_empty());
    }
}
