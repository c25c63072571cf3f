//! The core-config-v1 hash of every shipped workload template equals the value the reference
//! records for it in `editions.yaml` (`classes[].core_configs`, keyed by `reference`), and the
//! canonical JSON agrees with Python's `json.dumps` on tricky values when python3 is present.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::{Value, json};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream")
}

#[derive(Deserialize)]
struct Editions {
    classes: Vec<Class>,
}

#[derive(Deserialize)]
struct Class {
    id: String,
    family: String,
    allowlist: String,
    core_configs: Vec<String>,
    #[serde(default)]
    reference: Option<String>,
}

#[test]
fn shipped_templates_hash_to_their_recorded_classes() {
    let text = std::fs::read_to_string(data_dir().join("editions.yaml")).unwrap();
    let editions: Editions = serde_saphyr::from_str(&text).unwrap();
    let mut checked = 0;
    for class in &editions.classes {
        let Some(reference) = &class.reference else {
            continue;
        };
        let file = reference.rsplit('/').next().unwrap();
        let yaml = std::fs::read_to_string(data_dir().join("workload").join(file)).unwrap();
        let params: Value = serde_saphyr::from_str(&yaml).unwrap();
        let cc = mlps_lock::compute_core_config(&params, &class.family).unwrap();
        assert_eq!(cc.allowlist, class.allowlist, "{}", class.id);
        assert!(
            class.core_configs.contains(&cc.hash),
            "{} ({file}): computed {} but the reference records {:?}",
            class.id,
            cc.hash,
            class.core_configs
        );
        checked += 1;
    }
    assert_eq!(
        checked, 11,
        "every class with a reference template is checked"
    );
}

/// Deterministic tricky values: numeric-looking strings, floats across the repr boundaries,
/// non-ASCII text, nested lists and mappings.
fn tricky_values() -> Vec<Value> {
    let mut values = vec![
        json!("7"),
        json!(" 7.0 "),
        json!("+3"),
        json!("-0"),
        json!("0x10"),
        json!("1_0"),
        json!("1e400"),
        json!("-inf"),
        json!("Infinity"),
        json!("NaN"),
        json!(".5"),
        json!("5."),
        json!("1.5E+3"),
        json!("TRUE"),
        json!("yes"),
        json!("ümlaut ☃ 😀"),
        json!("tab\there"),
        json!("\u{7f}\u{1}"),
        json!(""),
        json!("   "),
        json!(null),
        json!(true),
        json!(18446744073709551615u64),
        json!(-9223372036854775808i64),
        json!([1.0, "2.5", [" false "], {"z": 1.0, "a": ["3"]}]),
        json!([]),
        json!("123456789012345678901234567890"),
        json!("1e22"),
        json!("1e23"),
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2000 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let bits = state >> 11;
        let mantissa = (bits % 1_000_000_007) as f64 / 997.0;
        let exp = ((state >> 3) % 60) as i32 - 30;
        let f = mantissa * 10f64.powi(exp);
        values.push(json!(f));
        values.push(json!(format!("{f:e}")));
    }
    values
}

#[test]
fn canonical_json_matches_python() {
    let values = tricky_values();
    let input = serde_json::to_string(&values).unwrap();
    // The oracle: Python's own json.dumps applied to the reference's canonicalization rule.
    let oracle = r#"
import json, sys
def canon(v):
    if isinstance(v, bool) or isinstance(v, int): return v
    if isinstance(v, float): return int(v) if v.is_integer() else v
    if isinstance(v, str):
        s = v.strip(); low = s.lower()
        if low in ("true", "false"): return low == "true"
        try: return int(s)
        except ValueError: pass
        try: f = float(s)
        except ValueError: return s
        return int(f) if f.is_integer() else f
    if isinstance(v, (list, tuple)): return [canon(x) for x in v]
    return v
for v in json.load(sys.stdin):
    print(json.dumps({"k": canon(v)}, sort_keys=True, separators=(",", ":"), ensure_ascii=True))
"#;
    let child = Command::new("python3")
        .args(["-c", oracle])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("SKIP: python3 not available for the json.dumps differential test");
        return;
    };
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(expected.len(), values.len());
    for (value, want) in values.iter().zip(&expected) {
        let mut map = std::collections::BTreeMap::new();
        map.insert("k".to_string(), value);
        assert_eq!(&mlps_lock::canonical_json(&map), want, "value {value}");
    }
}
