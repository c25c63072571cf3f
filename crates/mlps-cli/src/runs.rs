//! The run ledger and `runs list|show|rm|purge|gc`, `status` (mlpstorage.md §1.11–1.12).
//!
//! Ledger: `<results-dir>/.mlps/runs.jsonl`, one `{"id", "leaf", "registered_at"}` per line;
//! ids are small integers assigned when a leaf is reserved (or first seen by these commands, for
//! trees written by other tools) and never reused. Everything else is read from the tree.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;

use chrono::{Local, NaiveDate, NaiveDateTime, Utc};
use mlps_rules::metadata::RunMetadata;
use mlps_rules::results_tree::{Family, LeafInfo, Mode, ResultsTree, parse_run_datetime};
use serde_json::{Value, json};

use crate::exit::{CliError, ExitCode};

fn ledger(tree: &ResultsTree) -> BTreeMap<String, i64> {
    let text = fs::read_to_string(tree.ledger_path()).unwrap_or_default();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line)
            && let (Some(id), Some(leaf)) = (v["id"].as_i64(), v["leaf"].as_str())
        {
            map.insert(leaf.to_string(), id);
        }
    }
    map
}

fn max_id(tree: &ResultsTree) -> i64 {
    ledger(tree).values().copied().max().unwrap_or(0)
}

fn append_ledger(tree: &ResultsTree, relative: &str, id: i64) -> std::io::Result<()> {
    fs::create_dir_all(tree.mlps_dir())?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(tree.ledger_path())?;
    let line =
        json!({"id": id, "leaf": relative, "registered_at": crate::pipeline::iso(Utc::now())});
    writeln!(f, "{line}")
}

/// Registers a freshly reserved leaf; returns its id (None if the ledger is not writable).
pub fn register(tree: &ResultsTree, leaf: &Path) -> Option<i64> {
    let rel = leaf
        .strip_prefix(tree.root())
        .ok()?
        .to_string_lossy()
        .replace('\\', "/");
    let id = max_id(tree) + 1;
    append_ledger(tree, &rel, id).ok()?;
    Some(id)
}

/// One leaf with its ledger id and status.
#[derive(Debug, Clone)]
pub struct Run {
    /// Ledger id.
    pub id: i64,
    /// Identity from the path.
    pub info: LeafInfo,
    /// `complete` / `failed` / `incomplete`.
    pub status: &'static str,
    /// Metadata, if readable.
    pub meta: Option<RunMetadata>,
    /// Bytes under the leaf.
    pub size: u64,
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(p) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

fn status_of(info: &LeafInfo, meta: &Option<RunMetadata>) -> &'static str {
    match meta {
        Some(m) => match m.exit_status {
            Some(0) => "complete",
            Some(_) => "failed",
            // Legacy leaves (no exit_status): DLIO summary, or a datasize/datagen leaf.
            None => {
                let has_summary = fs::read_dir(&info.path)
                    .map(|rd| {
                        rd.filter_map(|e| e.ok())
                            .any(|e| e.file_name().to_string_lossy().ends_with("summary.json"))
                    })
                    .unwrap_or(false);
                if has_summary || info.command == "datasize" || info.command == "datagen" {
                    "complete"
                } else {
                    "incomplete"
                }
            }
        },
        None => "incomplete",
    }
}

/// Every leaf of the tree with ids (leaves not yet in the ledger are registered).
pub fn all_runs(tree: &ResultsTree) -> Vec<Run> {
    let mut ids = ledger(tree);
    let mut next = ids.values().copied().max().unwrap_or(0);
    let mut out = Vec::new();
    for info in tree.leaves() {
        let id = match ids.get(&info.relative) {
            Some(id) => *id,
            None => {
                next += 1;
                let _ = append_ledger(tree, &info.relative, next);
                ids.insert(info.relative.clone(), next);
                next
            }
        };
        let meta = RunMetadata::find_in_leaf(&info.path).and_then(|p| RunMetadata::read(&p).ok());
        let status = status_of(&info, &meta);
        let size = dir_size(&info.path);
        out.push(Run {
            id,
            info,
            status,
            meta,
            size,
        });
    }
    out.sort_by_key(|r| r.id);
    out
}

/// Selection filters shared by `runs list` and `status`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `--mode`.
    pub mode: Option<String>,
    /// `--benchmark` (CLI word).
    pub benchmark: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--systemname`.
    pub systemname: Option<String>,
    /// `--status`.
    pub status: Option<String>,
}

impl Filter {
    fn keep(&self, r: &Run) -> bool {
        self.mode
            .as_deref()
            .is_none_or(|m| m == r.info.mode.as_str())
            && self
                .benchmark
                .as_deref()
                .is_none_or(|b| Family::parse(b) == Some(r.info.family))
            && self.model.as_deref().is_none_or(|m| m == r.info.model)
            && self
                .systemname
                .as_deref()
                .is_none_or(|s| s == r.info.systemname)
            && self.status.as_deref().is_none_or(|s| s == r.status)
    }
}

fn run_json(r: &Run) -> Value {
    json!({
        "id": r.id,
        "leaf": r.info.relative,
        "status": r.status,
        "mode": r.info.mode.as_str(),
        "orgname": r.info.orgname,
        "systemname": r.info.systemname,
        "benchmark": r.info.family.cli_name(),
        "model": r.info.model,
        "command": r.info.command,
        "run_datetime": r.info.run_datetime,
        "code_image": code_image(&r.info.path),
        "size_bytes": r.size,
    })
}

fn code_image(leaf: &Path) -> Option<String> {
    fs::read_to_string(leaf.join(".mlps-code-image"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// `runs list`.
pub fn list(tree: &ResultsTree, f: &Filter, as_json: bool) {
    let runs: Vec<Run> = all_runs(tree).into_iter().filter(|r| f.keep(r)).collect();
    if as_json {
        let v: Vec<Value> = runs.iter().map(run_json).collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    println!(
        "{:>4}  {:<10} {:<6} {:<20} {:<13} {:<16} {:<10} {:<15} {:<12} {:>10}",
        "ID", "STATUS", "MODE", "SYSTEM", "BENCHMARK", "MODEL", "COMMAND", "START", "CODE", "SIZE"
    );
    for r in &runs {
        let code = code_image(&r.info.path)
            .map(|c| c.rsplit(':').next().unwrap_or("").chars().take(8).collect())
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{:>4}  {:<10} {:<6} {:<20} {:<13} {:<16} {:<10} {:<15} {:<12} {:>10}",
            r.id,
            r.status,
            r.info.mode.as_str(),
            r.info.systemname,
            r.info.family.cli_name(),
            r.info.model,
            r.info.command,
            r.info.run_datetime,
            code,
            r.size
        );
    }
    if runs.is_empty() {
        println!("(no runs under {})", tree.root().display());
    }
}

fn find(tree: &ResultsTree, id: i64) -> Result<Run, CliError> {
    all_runs(tree)
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| CliError::usage(format!("error: no run with id {id}")))
}

/// `runs show <id>`.
pub fn show(tree: &ResultsTree, id: i64) -> Result<(), CliError> {
    let r = find(tree, id)?;
    println!("id:          {}", r.id);
    println!("leaf:        {}", r.info.path.display());
    println!("status:      {}", r.status);
    println!(
        "identity:    {} / {} / {} / {} / {} / {}",
        r.info.mode.as_str(),
        r.info.orgname,
        r.info.systemname,
        r.info.family.cli_name(),
        r.info.model,
        r.info.command
    );
    println!("size:        {} bytes", r.size);
    println!(
        "code image:  {}",
        code_image(&r.info.path).unwrap_or_else(|| "-".into())
    );
    let prov = r.info.path.join("provenance.json");
    let stamp = match fs::read_to_string(&prov) {
        Ok(t) if serde_json::from_str::<Value>(&t).is_ok() => "provenance.json",
        Ok(_) => "MALFORMED",
        Err(_) => "derived",
    };
    println!("provenance:  {stamp}");
    if let Some(m) = &r.meta {
        println!("metadata:");
        println!("  exit_status:      {}", opt(&m.exit_status));
        println!("  executed_command: {}", opt(&m.executed_command));
        println!("  runtime:          {}", opt(&m.runtime));
        println!("  verification:     {}", opt(&m.verification));
        println!("  started:          {}", opt(&m.invocation_start_time));
        println!("  ended:            {}", opt(&m.invocation_end_time));
    } else {
        println!("metadata:    (none)");
    }
    println!("files:");
    let mut files = Vec::new();
    collect_files(&r.info.path, &r.info.path, &mut files);
    files.sort();
    for (rel, size) in files {
        println!("  {size:>12}  {rel}");
    }
    Ok(())
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            collect_files(base, &p, out);
        } else {
            let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
            out.push((rel, e.metadata().map(|m| m.len()).unwrap_or(0)));
        }
    }
}

/// Parses `--older-than` (`12h`, `7d`, `2w`, or a date `2026-09-01`) into a cutoff.
pub fn parse_older_than(s: &str, now: NaiveDateTime) -> Result<NaiveDateTime, CliError> {
    let bad = || {
        CliError::usage(format!(
            "error: --older-than '{s}': expected an age like 12h, 7d, 2w or a date YYYY-MM-DD"
        ))
    };
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).ok_or_else(bad);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let hours = match unit {
        "h" => n,
        "d" => n * 24,
        "w" => n * 24 * 7,
        _ => return Err(bad()),
    };
    Ok(now - chrono::Duration::hours(hours))
}

fn confirm(question: &str, yes: bool) -> Result<bool, CliError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "error: {question} needs confirmation and stdin is not a terminal; pass --yes"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn batch_dir(tree: &ResultsTree) -> std::path::PathBuf {
    tree.trash_dir()
        .join(Local::now().format("%Y%m%d_%H%M%S_%f").to_string())
}

fn move_to(src: &Path, dst: &Path) -> Result<(), CliError> {
    if let Some(p) = dst.parent() {
        fs::create_dir_all(p)
            .map_err(|e| CliError::general(format!("error: {}: {e}", p.display())))?;
    }
    fs::rename(src, dst)
        .map_err(|e| CliError::general(format!("error: moving {}: {e}", src.display())))
}

/// Options of `runs rm`.
#[derive(Debug, Clone, Default)]
pub struct RmOptions {
    /// Explicit ids.
    pub ids: Vec<i64>,
    /// `--status`.
    pub status: Option<String>,
    /// `--older-than`.
    pub older_than: Option<String>,
    /// `--keep-last N` (per result: mode/system/benchmark/model/command).
    pub keep_last: Option<i64>,
    /// `--yes`.
    pub yes: bool,
}

/// `runs rm`.
pub fn rm(tree: &ResultsTree, o: &RmOptions) -> Result<(), CliError> {
    if o.ids.is_empty() && o.status.is_none() && o.older_than.is_none() && o.keep_last.is_none() {
        return Err(CliError::usage(
            "error: runs rm needs ids or a selection (--status, --older-than, --keep-last)",
        ));
    }
    let cutoff = o
        .older_than
        .as_deref()
        .map(|s| parse_older_than(s, Local::now().naive_local()))
        .transpose()?;
    let runs = all_runs(tree);
    for id in &o.ids {
        if !runs.iter().any(|r| r.id == *id) {
            return Err(CliError::usage(format!("error: no run with id {id}")));
        }
    }
    let mut keep_newest: std::collections::HashSet<i64> = Default::default();
    if let Some(n) = o.keep_last {
        let mut groups: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
        for r in &runs {
            let parent = r
                .info
                .relative
                .rsplit_once('/')
                .map(|x| x.0)
                .unwrap_or("")
                .to_string();
            groups.entry(parent).or_default().push(r);
        }
        for g in groups.values_mut() {
            g.sort_by(|a, b| b.info.run_datetime.cmp(&a.info.run_datetime));
            keep_newest.extend(g.iter().take(n.max(0) as usize).map(|r| r.id));
        }
    }
    let selected: Vec<&Run> = runs
        .iter()
        .filter(|r| o.ids.is_empty() || o.ids.contains(&r.id))
        .filter(|r| o.status.as_deref().is_none_or(|s| s == r.status))
        .filter(|r| {
            cutoff.is_none_or(|c| parse_run_datetime(&r.info.run_datetime).is_some_and(|t| t < c))
        })
        .filter(|r| o.keep_last.is_none() || !keep_newest.contains(&r.id))
        .collect();
    if selected.is_empty() {
        println!("nothing to remove");
        return Ok(());
    }
    for r in &selected {
        println!("  {:>4}  {}", r.id, r.info.relative);
    }
    if !confirm(
        &format!("move {} run(s) to the trash?", selected.len()),
        o.yes,
    )? {
        println!("nothing removed");
        return Ok(());
    }
    let batch = batch_dir(tree);
    for r in &selected {
        move_to(&r.info.path, &batch.join(&r.info.relative))?;
    }
    println!("moved {} run(s) to {}", selected.len(), batch.display());
    println!(
        "note: model-level rollups (results.json/results.csv) may now be stale; rerun `mlpstorage reports reportgen`"
    );
    Ok(())
}

/// `runs purge`.
pub fn purge(tree: &ResultsTree, yes: bool) -> Result<(), CliError> {
    let trash = tree.trash_dir();
    if !trash.exists() {
        println!("trash is empty");
        return Ok(());
    }
    if !confirm(&format!("delete {} for good?", trash.display()), yes)? {
        return Ok(());
    }
    fs::remove_dir_all(&trash)
        .map_err(|e| CliError::general(format!("error: {}: {e}", trash.display())))?;
    println!("deleted {}", trash.display());
    Ok(())
}

/// `runs gc`: code-image pool dirs no leaf points at go to the trash.
pub fn gc(tree: &ResultsTree, yes: bool) -> Result<(), CliError> {
    let referenced: Vec<String> = tree
        .leaves()
        .iter()
        .filter_map(|l| code_image(&l.path))
        .filter_map(|p| p.rsplit(':').next().map(|h| h.chars().take(8).collect()))
        .collect();
    let pool = tree.code_images_dir();
    let unreferenced: Vec<String> = fs::read_dir(&pool)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| {
                    n.strip_prefix("code-")
                        .is_some_and(|h| !referenced.iter().any(|r| r == h))
                })
                .collect()
        })
        .unwrap_or_default();
    if unreferenced.is_empty() {
        println!("no unreferenced code images");
        return Ok(());
    }
    for n in &unreferenced {
        println!("  {n}");
    }
    if !confirm(
        &format!("move {} code image(s) to the trash?", unreferenced.len()),
        yes,
    )? {
        return Ok(());
    }
    let batch = batch_dir(tree);
    for n in &unreferenced {
        move_to(&pool.join(n), &batch.join("code-images").join(n))?;
    }
    Ok(())
}

/// Runs required per result (edition 3.0).
pub fn required_runs(f: Family) -> usize {
    match f {
        Family::Training => 6,
        Family::Checkpointing => 2,
        Family::VectorDatabase => 5,
        Family::KvCache => 1,
    }
}

/// `status`.
pub fn status(
    tree: &ResultsTree,
    f: &Filter,
    submit: Option<&str>,
    expand: bool,
    as_json: bool,
) -> ExitCode {
    type Key = (Mode, String, Family, String, String);
    let mut results: BTreeMap<Key, Vec<Run>> = BTreeMap::new();
    for r in all_runs(tree).into_iter().filter(|r| f.keep(r)) {
        if r.info.command != "run" {
            continue;
        }
        let acc = r
            .meta
            .as_ref()
            .and_then(|m| m.accelerator.clone())
            .unwrap_or_else(|| "-".into());
        let key = (
            r.info.mode,
            r.info.systemname.clone(),
            r.info.family,
            r.info.model.clone(),
            acc,
        );
        results.entry(key).or_default().push(r);
    }
    let mut rows = Vec::new();
    for ((mode, system, family, model, acc), runs) in &results {
        let have = runs.iter().filter(|r| r.status == "complete").count();
        let need = required_runs(*family);
        let invalid = runs.iter().any(|r| {
            r.meta
                .as_ref()
                .and_then(|m| m.verification.as_deref())
                .is_some_and(|v| v.eq_ignore_ascii_case("invalid"))
        });
        let org = &runs[0].info.orgname;
        let paperwork = !tree
            .root()
            .join(mode.as_str())
            .join(org)
            .join("systems")
            .join(format!("{system}.yaml"))
            .is_file();
        let token = if *mode == Mode::Whatif {
            "-"
        } else if have < need {
            "short"
        } else if invalid {
            "invalid"
        } else if paperwork {
            "paperwork"
        } else {
            "ready"
        };
        if submit.is_some_and(|s| s != token) {
            continue;
        }
        rows.push((mode, system, family, model, acc, have, need, token, runs));
    }
    if as_json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(mode, system, family, model, acc, have, need, token, runs)| {
                json!({"division": mode.as_str(), "systemname": system, "benchmark": family.cli_name(),
                       "model": model, "accelerator": acc, "runs_have": have, "runs_required": need,
                       "submit": token, "runs": runs.iter().map(run_json).collect::<Vec<_>>()})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::Success;
    }
    println!(
        "{:<8} {:<24} {:<14} {:<16} {:<12} {:>6}  SUBMIT",
        "DIVISION", "SYSTEM", "BENCHMARK", "MODEL", "ACCEL", "RUNS"
    );
    for (mode, system, family, model, acc, have, need, token, runs) in &rows {
        println!(
            "{:<8} {:<24} {:<14} {:<16} {:<12} {:>6}  {token}",
            mode.as_str(),
            system,
            family.cli_name(),
            model,
            acc,
            format!("{have}/{need}")
        );
        if expand {
            for r in runs.iter() {
                println!("    {:>4}  {:<10} {}", r.id, r.status, r.info.run_datetime);
            }
        }
    }
    if rows.is_empty() {
        println!("(no results under {})", tree.root().display());
    }
    ExitCode::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_than() {
        let now = parse_run_datetime("20260910_120000").unwrap_or_default();
        assert_eq!(
            parse_older_than("12h", now).ok(),
            parse_run_datetime("20260910_000000")
        );
        assert_eq!(
            parse_older_than("1w", now).ok(),
            parse_run_datetime("20260903_120000")
        );
        assert_eq!(
            parse_older_than("2026-09-01", now).ok(),
            parse_run_datetime("20260901_000000")
        );
        assert!(parse_older_than("soon", now).is_err());
    }
}
