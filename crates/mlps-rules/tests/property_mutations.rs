//! Property test: random mutations of a valid tree (drop a file, corrupt a JSON file, swap a
//! number for a string, rename a directory) never panic, and each yields a finding that names
//! the mutated path (the finding's path is the path itself, a directory holding it inside the
//! tree, or lies below it; for a renamed directory, the message names the new name or a finding
//! names the old path that went missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use common::*;
use mlps_rules::validate::Severity;
use mlps_rules::validate_submission;
use proptest::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn all(root: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            dirs.push(p.clone());
            all(&p, files, dirs);
        } else {
            files.push(p);
        }
    }
}

fn numbers(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            let mut p = path.clone();
            p.push(k.clone());
            numbers(x, p, out)
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            let mut p = path.clone();
            p.push(format!("#{i}"));
            numbers(x, p, out)
        }),
        Value::Number(_) => out.push(path),
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match k.strip_prefix('#') {
        Some(i) => &mut v[i.parse::<usize>().unwrap()],
        None => &mut v[k.as_str()],
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Corrupt(usize),
    NumberToString(usize, usize),
    Rename(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Drop),
        any::<usize>().prop_map(Mutation::Corrupt),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::NumberToString(a, b)),
        any::<usize>().prop_map(Mutation::Rename),
    ]
}

/// Directories whose names carry meaning (the submitter directory name is free by the rules,
/// and per-rank/trial directories of a kv leaf are covered by their own rule).
fn renamable(t: &Tree, d: &Path) -> bool {
    let rel = d.strip_prefix(&t.root).unwrap();
    let n = rel.components().count();
    let name = d.file_name().unwrap().to_string_lossy();
    !(d == t.org()
        || name.starts_with("option_")
        || name.starts_with("trial_")
        || name.starts_with("rank_")
        || name == "code-images" && n == 1
        || rel.starts_with("code-images") && n > 2)
}

fn check(m: Mutation) -> Result<(), TestCaseError> {
    let tmp = tmp();
    let t = instance("closed", &tmp.path().join("sub"));
    let (mut files, mut dirs) = (vec![], vec![]);
    all(&t.root, &mut files, &mut dirs);
    files.sort();
    dirs.sort();
    let json_files: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .collect();
    let rdirs: Vec<&PathBuf> = dirs.iter().filter(|d| renamable(&t, d)).collect();
    let mut old: Option<PathBuf> = None;
    let (target, new_name): (PathBuf, Option<String>) = match m {
        Mutation::Drop(i) => {
            let f = &files[i % files.len()];
            std::fs::remove_file(f).unwrap();
            (f.clone(), None)
        }
        Mutation::Corrupt(i) => {
            let f = json_files[i % json_files.len()];
            let s = std::fs::read_to_string(f).unwrap();
            write(f, &format!("{{\"broken\": {}", &s[..s.len() / 2]));
            (f.clone(), None)
        }
        Mutation::NumberToString(i, j) => {
            // only files that hold numbers
            let with: Vec<(&PathBuf, Vec<Vec<String>>)> = json_files
                .iter()
                .filter_map(|f| {
                    let v: Value =
                        serde_json::from_str(&std::fs::read_to_string(f).unwrap()).ok()?;
                    let mut out = vec![];
                    numbers(&v, vec![], &mut out);
                    (!out.is_empty()).then_some((*f, out))
                })
                .collect();
            let (f, paths) = &with[i % with.len()];
            let p = &paths[j % paths.len()];
            edit(f, |v| {
                let x = at(v, p);
                *x = Value::String(x.to_string());
            });
            ((*f).clone(), None)
        }
        Mutation::Rename(i) => {
            let d = rdirs[i % rdirs.len()];
            let new = d.with_file_name(format!(
                "{}_renamed",
                d.file_name().unwrap().to_string_lossy()
            ));
            std::fs::rename(d, &new).unwrap();
            old = Some(d.clone());
            (
                new.clone(),
                Some(new.file_name().unwrap().to_string_lossy().into_owned()),
            )
        }
    };
    let findings = validate_submission(&t.root, None);
    let min_depth = t.root.components().count() + 2;
    let names = findings.iter().any(|f| {
        let p = &f.path;
        let via_path = p == &target
            || (target.starts_with(p) && p.components().count() >= min_depth)
            || p.starts_with(&target);
        let via_msg = new_name
            .as_ref()
            .is_some_and(|n| f.message.contains(n.as_str()));
        // a renamed directory is also named by a finding about its old name going missing
        let via_old = old.as_ref().is_some_and(|o| p == o || p.starts_with(o));
        via_path || via_msg || via_old
    });
    prop_assert!(
        names,
        "mutation {m:?} of {} yielded no finding naming it; findings:\n{}",
        target.display(),
        findings
            .iter()
            .filter(|f| f.severity >= Severity::Info)
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn mutations_never_panic_and_are_named(m in mutation()) {
        check(m)?;
    }
}

/// Exhaustive sweep of the two simplest kinds over every file of the tree (deterministic).
#[test]
fn every_dropped_or_corrupted_file_is_named() {
    let tmp = tmp();
    let t = instance("closed", &tmp.path().join("probe"));
    let (mut files, mut dirs) = (vec![], vec![]);
    all(&t.root, &mut files, &mut dirs);
    let n = files.len();
    let nj = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .count();
    for i in 0..n {
        check(Mutation::Drop(i)).unwrap();
    }
    for i in 0..nj {
        check(Mutation::Corrupt(i)).unwrap();
    }
}
