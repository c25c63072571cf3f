//! `reports reportgen` (mlpstorage.md §4.2–4.3): model-level rollups in the fixed v3.0 column
//! schema, plus a table-row model the CLI prints. Robust to numbers stored as strings, missing
//! optional files and the v1.0 layout; every leaf that yields no row gets a one-line reason.
use crate::checkers::{
    RunParams, RunSummary, check_checkpointing_submission, check_run, check_training_submission,
};
use crate::edition::{Edition, Layout, llm_allowed_values};
use crate::lenient::{self, get_num, get_text, is_timestamp_dir, mean};
use crate::validate::{Leaf, csv_cell, list, load_leaf, recall_value, vdb_summary};
use crate::verdict::{Category, Verdict};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The fixed column schema of results.csv / results.json (§4.3 item 5).
pub fn columns() -> Vec<String> {
    let mut c: Vec<String> = [
        "Public ID",
        "Organization",
        "Division",
        "Benchmark Type",
        "Model",
        "Rules Edition",
        "Comparability Class",
        "Name",
        "Description",
        "Type",
        "Access Protocol",
        "Availability",
        "RU's",
        "Integrated Client Storage",
        "Usable Capacity (TiB)",
        "Training - Accelerator Type",
        "Training - # Client Nodes",
        "Training - Code",
        "Training - Logs",
        "Training - # Simulated Accelerators",
        "Training - Read B/W (GiB/s)",
        "Checkpointing - Checkpoint Mode",
        "Checkpointing - # Client Nodes",
        "Checkpointing - DP Instances",
        "Checkpointing - Code",
        "Checkpointing - Logs",
        "Checkpointing - Write B/W (GiB/s)",
        "Checkpointing - Write Duration (secs)",
        "Checkpointing - Read B/W (GiB/s)",
        "Checkpointing - Read Duration (secs)",
        "VDB - # Client Nodes",
        "VDB - Code",
        "VDB - Logs",
        "VDB - Vector Count",
        "VDB - Vector Dimension",
        "VDB - Index Type",
        "VDB - Queries per Sec",
        "VDB - Query Latency (ms)",
        "VDB - Recall Percentage",
        "VDB - Storage IOPs",
        "VDB - Read B/W (GiB/s)",
        "KVCache - # Client Nodes",
        "KVCache - Code",
        "KVCache - Logs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for g in KV_GROUPS.iter().map(|(_, g)| g) {
        for m in [
            "Throughput (tok/s)",
            "Read B/W (GiB/s)",
            "Write B/W (GiB/s)",
            "P95 Read Latency (ms)",
        ] {
            c.push(format!("KVCache {g} - {m}"));
        }
    }
    c
}

const KV_GROUPS: [(&str, &str); 3] = [
    ("1", "llama3.1-8b Storage Only"),
    ("2", "llama3.1-8b Storage + Mem"),
    ("3", "llama3.1-70b Storage Only"),
];

/// One output row: column → value (string, number, or `{"text","href"}` link). Missing = blank.
pub type Row = Map<String, Value>;

/// What the CLI prints per result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableRow {
    pub division: String,
    pub org: String,
    pub system: String,
    pub benchmark: String,
    pub model: String,
    pub accelerator: String,
    pub runs: usize,
    pub category: Category,
    pub headline: String,
    pub path: PathBuf,
    /// Extra aggregated metrics (e.g. `train_mean_of_au_percentage`), for `--json` output.
    pub metrics: BTreeMap<String, f64>,
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub table: Vec<TableRow>,
    pub skipped: Vec<Skipped>,
}

/// Generate the report for a results directory (submission root, division, org or workload dir).
pub fn generate(results_dir: &Path) -> Report {
    generate_scoped(results_dir, None)
}

struct Loc {
    division: String,
    org: String,
    org_dir: Option<PathBuf>,
    system: String,
}

fn locate(p: &Path) -> Loc {
    let comps: Vec<String> = p
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut loc = Loc {
        division: String::new(),
        org: String::new(),
        org_dir: None,
        system: String::new(),
    };
    if let Some(i) = comps.iter().rposition(|c| {
        c.eq_ignore_ascii_case("closed") || c.eq_ignore_ascii_case("open") || c == "whatif"
    }) {
        loc.division = comps[i].to_ascii_lowercase();
        if let Some(o) = comps.get(i + 1) {
            loc.org = o.clone();
            loc.org_dir = Some(comps[..=i + 1].iter().collect());
        }
        if comps.get(i + 2).map(|s| s.as_str()) == Some("results") {
            loc.system = comps.get(i + 3).cloned().unwrap_or_default();
        }
    }
    loc
}

/// Workload groups: workload dir → leaf dirs.
fn discover(root: &Path, skipped: &mut Vec<Skipped>) -> BTreeMap<PathBuf, (String, Vec<PathBuf>)> {
    let mut groups: BTreeMap<PathBuf, (String, Vec<PathBuf>)> = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let entries = list(&d);
        let names: Vec<&String> = entries
            .iter()
            .filter(|(_, dir)| !dir)
            .map(|(n, _)| n)
            .collect();
        let has_summary = names.iter().any(|n| n.ends_with("summary.json"));
        let metas = names
            .iter()
            .filter(|n| n.ends_with("_metadata.json"))
            .count();
        let dname = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_leaf = has_summary || metas == 1 || (is_timestamp_dir(&dname) && metas > 1);
        if is_leaf && d != root {
            if metas > 1 {
                skipped.push(Skipped {
                    path: d.clone(),
                    reason: format!("{metas} *_metadata.json files in one leaf; skipped"),
                });
                continue;
            }
            let comps: Vec<String> = d
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let family = ["training", "checkpointing", "vector_database", "kv_cache"]
                .iter()
                .find(|f| comps.iter().any(|c| c == *f))
                .map(|s| s.to_string())
                .unwrap_or_else(|| {
                    if dname.starts_with("run") || d.parent().is_some_and(|p| p.ends_with("runs")) {
                        "training_v1".into()
                    } else {
                        "unknown".into()
                    }
                });
            let parent = d.parent().map(|p| p.to_path_buf()).unwrap_or(d.clone());
            // v1 host sub-directory: runs/run1/<host>/summary.json
            let (group, leaf) = if family == "training_v1" && !dname.starts_with("run") {
                (
                    parent
                        .parent()
                        .map(|p| p.to_path_buf())
                        .unwrap_or(parent.clone()),
                    d.clone(),
                )
            } else {
                (parent, d.clone())
            };
            groups
                .entry(group)
                .or_insert_with(|| (family, vec![]))
                .1
                .push(leaf);
            continue;
        }
        for (n, is_dir) in entries {
            if is_dir
                && !n.starts_with('.')
                && depth < 12
                && !n.starts_with("code-")
                && n != "code-images"
                && n != "dlio_config"
                && n != "configs"
            {
                stack.push((d.join(n), depth + 1));
            }
        }
    }
    groups
}

/// As [`generate`], optionally restricted to one (division, org, system).
pub fn generate_scoped(results_dir: &Path, scope: Option<(&str, &str, &str)>) -> Report {
    let cache = crate::cache::Scope::enter();
    let mut rep = Report::default();
    let edition_id = crate::validate::detect_edition(results_dir);
    let groups = discover(results_dir, &mut rep.skipped);
    for (wdir, (family, mut leaves)) in groups {
        leaves.sort();
        let loc = locate(&wdir);
        if let Some((d, o, s)) = scope
            && (!loc.division.eq_ignore_ascii_case(d) || loc.org != o || loc.system != s)
        {
            continue;
        }
        let loaded: Vec<Leaf> = leaves.iter().map(|l| load_leaf(l).0).collect();
        let ed_id = loaded
            .iter()
            .find_map(|l| {
                lenient::read_json(&l.dir.join("provenance.json"))
                    .ok()
                    .and_then(|p| get_text(&p, "rules_edition"))
            })
            .unwrap_or_else(|| {
                if family == "training_v1" {
                    "1.0".into()
                } else {
                    edition_id.clone()
                }
            });
        let ed = Edition::load(&ed_id).unwrap_or_else(|_| Edition::current());
        let mut row = Row::new();
        for c in columns() {
            row.insert(c, Value::String(String::new()));
        }
        row.insert("Organization".into(), json!(loc.org));
        row.insert("Division".into(), json!(capitalize(&loc.division)));
        row.insert("Rules Edition".into(), json!(ed.id));
        if let Some(y) = loc
            .org_dir
            .as_ref()
            .and_then(|o| system_yaml(o, &loc.system))
        {
            if let Some(n) = get_text(&y, "system_under_test.solution.submission_name") {
                row.insert("Name".into(), json!(n));
            }
            if let Some(n) = get_text(&y, "system_under_test.solution.friendly_description") {
                row.insert("Description".into(), json!(n.trim()));
            }
            if let Some(n) =
                lenient::get(&y, "system_under_test.total_rack_units").and_then(lenient::num)
            {
                row.insert("RU's".into(), num_value(n));
            }
        }
        let out = match family.as_str() {
            "training" | "training_v1" => {
                training(&wdir, &loaded, &ed, &loc, &mut row, &mut rep.skipped)
            }
            "checkpointing" => checkpointing(&wdir, &loaded, &ed, &loc, &mut row, &mut rep.skipped),
            "vector_database" => vdb(&wdir, &loaded, &ed, &loc, &mut row, &mut rep.skipped),
            "kv_cache" => kvcache(&wdir, &loaded, &loc, &mut row, &mut rep.skipped),
            _ => {
                for l in &loaded {
                    rep.skipped.push(Skipped {
                        path: l.dir.clone(),
                        reason: "cannot tell the benchmark family from the path or metadata".into(),
                    });
                }
                None
            }
        };
        if cache.is_outermost() {
            // A stand-alone report needs each workload's files once: keep memory flat on big
            // trees. Inside a validation the validator decides when to forget them.
            crate::cache::clear_parsed();
        }
        if let Some(t) = out {
            rep.rows.push(row);
            rep.table.push(t);
        }
    }
    rep
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn system_yaml(org_dir: &Path, system: &str) -> Option<Value> {
    let sd = org_dir.join("systems");
    for ext in ["yaml", "yml"] {
        if let Ok(v) = lenient::read_yaml(&sd.join(format!("{system}.{ext}"))) {
            return Some(v);
        }
    }
    for ext in ["json", "JSON"] {
        if let Ok(v) = lenient::read_json(&sd.join(format!("{system}.{ext}"))) {
            return Some(v);
        }
    }
    None
}

fn num_value(x: f64) -> Value {
    if x.is_finite() {
        serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::String(String::new()))
    } else {
        Value::String(String::new())
    }
}

fn link(text: &str, href: &Path, base: &Path) -> Value {
    let rel = href.strip_prefix(base).unwrap_or(href);
    json!({"text": text, "href": rel.to_string_lossy()})
}

fn code_href(l: &Leaf) -> Option<String> {
    let t = std::fs::read_to_string(l.dir.join(".mlps-code-image")).ok()?;
    let h = t.trim().rsplit(':').next()?.to_string();
    Some(format!("code-images/code-{}", h.get(..8)?))
}

fn verdict_of(l: &Leaf, ed: &Edition, division: &str) -> (Verdict, Option<RunParams>) {
    match l.metadata.as_deref().and_then(RunParams::from_metadata) {
        Some(mut rp) => {
            if !division.is_empty() {
                rp.mode = division.to_string();
            }
            (check_run(&rp, ed), Some(rp))
        }
        None => {
            let cat = Category::parse(division).unwrap_or(Category::Open);
            (
                Verdict {
                    category: cat,
                    issues: vec![],
                },
                None,
            )
        }
    }
}

fn training(
    wdir: &Path,
    leaves: &[Leaf],
    ed: &Edition,
    loc: &Loc,
    row: &mut Row,
    skipped: &mut Vec<Skipped>,
) -> Option<TableRow> {
    let mut runs: Vec<&Leaf> = Vec::new();
    for l in leaves {
        let cmd = l
            .md("command")
            .and_then(lenient::text)
            .unwrap_or_else(|| "run".into());
        if cmd != "run" {
            skipped.push(Skipped {
                path: l.dir.clone(),
                reason: format!("{cmd} leaf carries no run metrics"),
            });
        } else if l.summary.is_none() {
            skipped.push(Skipped {
                path: l.dir.clone(),
                reason: "run leaf has no readable summary.json".into(),
            });
        } else {
            runs.push(l);
        }
    }
    if runs.is_empty() {
        return None;
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    let v1 = ed.layout == Layout::V1;
    let mut issues = Vec::new();
    let measured: Vec<&Leaf> = if !v1 && runs.len() > 1 {
        skipped.push(Skipped {
            path: runs[0].dir.clone(),
            reason: "warm-up run (earliest of the workload), excluded from aggregation".into(),
        });
        runs[1..].to_vec()
    } else {
        runs.clone()
    };
    // verdicts
    let summaries: Vec<RunSummary> = runs
        .iter()
        .map(|l| {
            let (v, rp) = verdict_of(l, ed, &loc.division);
            let mut rp = rp.unwrap_or_else(|| {
                RunParams::new(crate::checkers::BenchmarkType::Training, "", &loc.division)
            });
            rp.command = "run".into();
            RunSummary {
                params: rp,
                run_datetime: l.name.clone(),
                verdict: v,
                start: l.start(),
                end: l.end(),
            }
        })
        .collect();
    let mut category = summaries
        .iter()
        .map(|s| s.verdict.category)
        .max()
        .unwrap_or(Category::Closed);
    if summaries.iter().all(|s| !s.params.model.is_empty()) {
        let mv = check_training_submission(&summaries, ed);
        category = category.max(mv.category);
        issues.extend(
            mv.issues
                .iter()
                .filter(|i| i.validation != Category::Closed)
                .map(|i| i.to_string()),
        );
    } else if runs.len() != ed.runs("training").unwrap_or(5) {
        category = Category::Invalid;
        issues.push(format!(
            "expected {} training invocations; found {}",
            ed.runs("training").unwrap_or(5),
            runs.len()
        ));
    }
    for s in &summaries {
        issues.extend(
            s.verdict
                .invalid_issues()
                .map(|i| format!("{}: {i}", s.run_datetime)),
        );
    }
    // list metrics: mean over epochs within a run, then mean over runs
    let mut metrics: BTreeMap<String, f64> = BTreeMap::new();
    let mut per_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for l in &measured {
        if let Some(Value::Object(m)) = l.sm("metric") {
            for (k, v) in m {
                if let Value::Array(a) = v {
                    let xs: Vec<f64> = a.iter().filter_map(lenient::num).collect();
                    match mean(&xs) {
                        Some(x) => per_metric.entry(k.clone()).or_default().push(x),
                        None => {
                            category = Category::Invalid;
                            issues.push(format!(
                                "metric {k} is empty in invocation {}; cannot aggregate",
                                l.name
                            ));
                        }
                    }
                }
            }
        }
    }
    for (k, xs) in per_metric {
        if let Some(m) = mean(&xs) {
            metrics.insert(
                format!("train_mean_of_{}", k.trim_start_matches("train_")),
                m,
            );
        }
    }
    let io: Vec<f64> = measured
        .iter()
        .filter_map(|l| l.sm_num("metric.train_io_mean_MB_per_second"))
        .collect();
    let bw = if io.len() == measured.len() {
        mean(&io).map(|m| m / 1024.0)
    } else {
        None
    };
    let first = measured
        .iter()
        .chain(runs.iter())
        .find(|l| l.sm("num_accelerators").is_some());
    let accel = runs
        .iter()
        .find_map(|l| {
            l.md("accelerator")
                .and_then(lenient::text)
                .or_else(|| l.arg_text("accelerator_type"))
        })
        .or_else(|| v1_accel(wdir))
        .unwrap_or_default();
    let model = runs
        .iter()
        .find_map(|l| l.md("model").and_then(lenient::text))
        .or_else(|| v1_model(wdir, ed))
        .unwrap_or_default();
    row.insert("Benchmark Type".into(), json!("Training"));
    row.insert("Model".into(), json!(model_label(&model)));
    row.insert("Training - Accelerator Type".into(), json!(accel));
    if let Some(f) = first {
        if let Some(h) = f.sm("num_hosts").and_then(lenient::num) {
            row.insert("Training - # Client Nodes".into(), num_value(h));
        }
        if let Some(a) = f.sm("num_accelerators").and_then(lenient::num) {
            row.insert("Training - # Simulated Accelerators".into(), num_value(a));
        }
    }
    let base = root_of(wdir);
    if let Some(c) = runs.iter().find_map(|l| code_href(l)) {
        row.insert("Training - Code".into(), link("Code", &base.join(c), &base));
    }
    row.insert("Training - Logs".into(), link("Logs", wdir, &base));
    if let Some(b) = bw {
        row.insert("Training - Read B/W (GiB/s)".into(), num_value(b));
        metrics.insert("read_bw_gib_s".into(), b);
    }
    Some(TableRow {
        division: loc.division.clone(),
        org: loc.org.clone(),
        system: loc.system.clone(),
        benchmark: "training".into(),
        model,
        accelerator: accel,
        runs: runs.len(),
        category,
        headline: bw
            .map(|b| format!("Read {b:.3} GiB/s"))
            .unwrap_or_else(|| "Read B/W n/a".into()),
        path: wdir.to_path_buf(),
        metrics,
        issues,
    })
}

fn v1_accel(wdir: &Path) -> Option<String> {
    let r = lenient::read_json(&wdir.join("mlperf_storage_report.json")).ok()?;
    get_text(&r, "overall.accelerator")
        .or_else(|| wdir.file_name().map(|n| n.to_string_lossy().into_owned()))
}

fn v1_model(wdir: &Path, ed: &Edition) -> Option<String> {
    if let Some(m) = lenient::read_json(&wdir.join("mlperf_storage_report.json"))
        .ok()
        .and_then(|r| get_text(&r, "overall.model"))
    {
        return Some(m);
    }
    wdir.components()
        .rev()
        .filter_map(|c| c.as_os_str().to_str())
        .map(|s| s.split('-').next().unwrap_or(s))
        .find(|s| ed.has_model("training", s))
        .map(|s| s.to_string())
}

fn root_of(wdir: &Path) -> PathBuf {
    // repo-root-relative hrefs: the directory holding closed/open
    let comps: Vec<_> = wdir.components().collect();
    match comps.iter().rposition(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.eq_ignore_ascii_case("closed") || s.eq_ignore_ascii_case("open")
    }) {
        Some(i) => comps[..i].iter().collect(),
        None => wdir.to_path_buf(),
    }
}

fn model_label(m: &str) -> String {
    match m {
        "unet3d" => "Unet3D".into(),
        "retinanet" => "RetinaNet".into(),
        "llama3-8b" => "8B".into(),
        "llama3-70b" => "70B".into(),
        "llama3-405b" => "405B".into(),
        "llama3-1t" => "1250B".into(),
        "resnet50" => "ResNet50".into(),
        "cosmoflow" => "CosmoFlow".into(),
        other => other.into(),
    }
}

fn checkpointing(
    wdir: &Path,
    leaves: &[Leaf],
    ed: &Edition,
    loc: &Loc,
    row: &mut Row,
    skipped: &mut Vec<Skipped>,
) -> Option<TableRow> {
    let runs: Vec<&Leaf> = leaves
        .iter()
        .filter(|l| {
            if l.summary.is_none() {
                skipped.push(Skipped {
                    path: l.dir.clone(),
                    reason: "checkpointing leaf has no readable summary.json".into(),
                });
                false
            } else {
                true
            }
        })
        .collect();
    if runs.is_empty() {
        return None;
    }
    let mut issues = Vec::new();
    let summaries: Vec<RunSummary> = runs
        .iter()
        .map(|l| {
            let (v, rp) = verdict_of(l, ed, &loc.division);
            let rp = rp.unwrap_or_else(|| {
                RunParams::new(
                    crate::checkers::BenchmarkType::Checkpointing,
                    "",
                    &loc.division,
                )
            });
            RunSummary {
                params: rp,
                run_datetime: l.name.clone(),
                verdict: v,
                start: l.inv_start().map(|t| t.0),
                end: l.inv_end().map(|t| t.0),
            }
        })
        .collect();
    let mv = check_checkpointing_submission(&summaries, ed);
    let category = summaries
        .iter()
        .map(|s| s.verdict.category)
        .max()
        .unwrap_or(Category::Closed)
        .max(mv.category);
    issues.extend(
        mv.issues
            .iter()
            .filter(|i| i.validation != Category::Closed)
            .map(|i| i.to_string()),
    );
    for s in &summaries {
        issues.extend(
            s.verdict
                .invalid_issues()
                .map(|i| format!("{}: {i}", s.run_datetime)),
        );
    }
    let count = |l: &Leaf, k: &str| l.param(k).and_then(lenient::uint);
    let dir_mean = |key: &str, ck: &str| -> Option<f64> {
        let producers: Vec<&&Leaf> = runs
            .iter()
            .filter(|l| count(l, ck).unwrap_or(0) > 0)
            .collect();
        let legacy = runs.iter().all(|l| count(l, ck).is_none());
        let xs: Vec<f64> = if legacy {
            runs.iter().filter_map(|l| l.sm_num(key)).collect()
        } else {
            producers.iter().filter_map(|l| l.sm_num(key)).collect()
        };
        if !legacy && (producers.is_empty() || xs.len() != producers.len()) {
            return None;
        }
        mean(&xs)
    };
    let w_bw = dir_mean(
        "metric.save_checkpoint_io_mean_GB_per_second",
        "checkpoint.num_checkpoints_write",
    );
    let w_d = dir_mean(
        "metric.save_checkpoint_duration_mean_seconds",
        "checkpoint.num_checkpoints_write",
    );
    let r_bw = dir_mean(
        "metric.load_checkpoint_io_mean_GB_per_second",
        "checkpoint.num_checkpoints_read",
    );
    let r_d = dir_mean(
        "metric.load_checkpoint_duration_mean_seconds",
        "checkpoint.num_checkpoints_read",
    );
    let model = runs
        .iter()
        .find_map(|l| l.md("model").and_then(lenient::text))
        .unwrap_or_else(|| {
            wdir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let subset = runs.iter().any(|l| {
        l.param("checkpoint.mode")
            .and_then(lenient::text)
            .as_deref()
            == Some("subset")
            || l.overrides()
                .get("checkpoint.mode")
                .and_then(lenient::text)
                .as_deref()
                == Some("subset")
    });
    row.insert("Benchmark Type".into(), json!("Checkpointing"));
    row.insert("Model".into(), json!(model_label(&model)));
    row.insert(
        "Checkpointing - Checkpoint Mode".into(),
        json!(if subset { "Subset" } else { "Full" }),
    );
    if let Some(h) = runs.iter().find_map(|l| l.sm_num("num_hosts")) {
        row.insert("Checkpointing - # Client Nodes".into(), num_value(h));
    }
    if let Some((_, _, gpdp, closed)) = llm_allowed_values(&model) {
        row.insert(
            "Checkpointing - DP Instances".into(),
            num_value((closed / gpdp) as f64),
        );
    }
    let base = root_of(wdir);
    if let Some(c) = runs.iter().find_map(|l| code_href(l)) {
        row.insert(
            "Checkpointing - Code".into(),
            link("Code", &base.join(c), &base),
        );
    }
    row.insert("Checkpointing - Logs".into(), link("Logs", wdir, &base));
    let mut metrics = BTreeMap::new();
    for (col, v, key) in [
        ("Checkpointing - Write B/W (GiB/s)", w_bw, "write_bw_gib_s"),
        (
            "Checkpointing - Write Duration (secs)",
            w_d,
            "write_duration_s",
        ),
        ("Checkpointing - Read B/W (GiB/s)", r_bw, "read_bw_gib_s"),
        (
            "Checkpointing - Read Duration (secs)",
            r_d,
            "read_duration_s",
        ),
    ] {
        if let Some(x) = v {
            row.insert(col.into(), num_value(x));
            metrics.insert(key.to_string(), x);
        }
    }
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or("n/a".into());
    Some(TableRow {
        division: loc.division.clone(),
        org: loc.org.clone(),
        system: loc.system.clone(),
        benchmark: "checkpointing".into(),
        model,
        accelerator: runs
            .iter()
            .find_map(|l| l.md("accelerator").and_then(lenient::text))
            .unwrap_or_default(),
        runs: runs.len(),
        category,
        headline: format!("Write {} GiB/s, Read {} GiB/s", fmt(w_bw), fmt(r_bw)),
        path: wdir.to_path_buf(),
        metrics,
        issues,
    })
}

fn vdb(
    wdir: &Path,
    leaves: &[Leaf],
    ed: &Edition,
    loc: &Loc,
    row: &mut Row,
    skipped: &mut Vec<Skipped>,
) -> Option<TableRow> {
    let mut runs = Vec::new();
    for l in leaves {
        let cmd = l.md("command").and_then(lenient::text).unwrap_or_else(|| {
            wdir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        if cmd != "run" {
            skipped.push(Skipped {
                path: l.dir.clone(),
                reason: format!("{cmd} leaf carries no query metrics"),
            });
        } else {
            runs.push(l);
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    let latest = *runs.last()?;
    for l in &runs[..runs.len() - 1] {
        skipped.push(Skipped {
            path: l.dir.clone(),
            reason: format!(
                "earlier VDB run; the row passes through the latest run {}",
                latest.name
            ),
        });
    }
    let s = vdb_summary(latest);
    if lenient::get(&s, "throughput_qps").is_none() {
        skipped.push(Skipped {
            path: latest.dir.clone(),
            reason:
                "no summary.json, statistics.json or vdb_multi_node_summary.json with query metrics"
                    .into(),
        });
        return None;
    }
    let (verdict, _) = verdict_of(latest, ed, &loc.division);
    row.insert("Benchmark Type".into(), json!("Vector Database"));
    let mut metrics = BTreeMap::new();
    let mut put = |col: &str, v: Option<f64>, key: &str, row: &mut Row| {
        if let Some(x) = v {
            row.insert(col.into(), num_value(x));
            metrics.insert(key.to_string(), x);
        }
    };
    put(
        "VDB - # Client Nodes",
        get_num(&s, "disk_io.host_count"),
        "client_nodes",
        row,
    );
    put(
        "VDB - Vector Count",
        get_num(&s, "num_vectors"),
        "num_vectors",
        row,
    );
    put(
        "VDB - Vector Dimension",
        get_num(&s, "dimension"),
        "dimension",
        row,
    );
    put(
        "VDB - Queries per Sec",
        get_num(&s, "throughput_qps"),
        "qps",
        row,
    );
    put(
        "VDB - Query Latency (ms)",
        get_num(&s, "p99_latency_ms"),
        "p99_latency_ms",
        row,
    );
    let recall = s
        .get("recall")
        .and_then(|r| {
            if r.is_object() {
                r.get("mean_recall").and_then(lenient::num)
            } else {
                lenient::num(r)
            }
        })
        .or_else(|| s.get("recall").and_then(recall_value));
    put(
        "VDB - Recall Percentage",
        recall.map(|r| r * 100.0),
        "recall_pct",
        row,
    );
    put(
        "VDB - Read B/W (GiB/s)",
        get_num(&s, "disk_io.total_bytes_read_per_sec").map(|b| b / crate::datasize::GIB),
        "read_bw_gib_s",
        row,
    );
    if let Some(it) = get_text(&s, "index_type") {
        row.insert("VDB - Index Type".into(), json!(it));
    }
    let base = root_of(wdir);
    if let Some(c) = code_href(latest) {
        row.insert("VDB - Code".into(), link("Code", &base.join(c), &base));
    }
    row.insert("VDB - Logs".into(), link("Logs", &latest.dir, &base));
    let qps = get_num(&s, "throughput_qps").unwrap_or(0.0);
    Some(TableRow {
        division: loc.division.clone(),
        org: loc.org.clone(),
        system: loc.system.clone(),
        benchmark: "vector_database".into(),
        model: latest
            .md("model")
            .and_then(lenient::text)
            .unwrap_or_default(),
        accelerator: String::new(),
        runs: runs.len(),
        category: verdict.category,
        headline: format!("{qps:.1} QPS"),
        path: wdir.to_path_buf(),
        metrics,
        issues: verdict.invalid_issues().map(|i| i.to_string()).collect(),
    })
}

fn kvcache(
    wdir: &Path,
    leaves: &[Leaf],
    loc: &Loc,
    row: &mut Row,
    skipped: &mut Vec<Skipped>,
) -> Option<TableRow> {
    // latest error-free run: summary exists, partial_failure false, no trial failures
    let mut cands: Vec<(&Leaf, Value)> = Vec::new();
    for l in leaves {
        let s = l.summary.as_deref().cloned().or_else(|| {
            l.files
                .iter()
                .find(|f| f.starts_with("kvcache_run_summary_"))
                .and_then(|f| lenient::read_json(&l.dir.join(f)).ok())
        });
        match s {
            None => skipped.push(Skipped {
                path: l.dir.clone(),
                reason: "kv_cache leaf has no summary.json or kvcache_run_summary_<ts>.json".into(),
            }),
            Some(s) if s.get("options").is_none() => skipped.push(Skipped {
                path: l.dir.clone(),
                reason: "kv_cache summary has no options block".into(),
            }),
            Some(s) => cands.push((l, s)),
        }
    }
    cands.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let clean = |s: &Value| {
        lenient::get_bool(s, "partial_failure") != Some(true)
            && s.get("trial_failures")
                .and_then(|t| t.as_object())
                .is_none_or(|o| o.is_empty())
    };
    let pick = cands
        .iter()
        .rposition(|(_, s)| clean(s))
        .or(if cands.is_empty() {
            None
        } else {
            Some(cands.len() - 1)
        })?;
    for (i, (l, _)) in cands.iter().enumerate() {
        if i != pick {
            skipped.push(Skipped {
                path: l.dir.clone(),
                reason: format!(
                    "not published: the latest error-free run is {}",
                    cands[pick].0.name
                ),
            });
        }
    }
    let (leaf, s) = &cands[pick];
    let mut issues = Vec::new();
    if lenient::get_bool(s, "partial_failure") == Some(true) {
        issues.push("partial_failure: averaged over surviving ranks".to_string());
    }
    row.insert("Benchmark Type".into(), json!("KV Cache"));
    if let Some(h) = get_num(s, "host_count") {
        row.insert("KVCache - # Client Nodes".into(), num_value(h));
    }
    let base = root_of(wdir);
    if let Some(c) = code_href(leaf) {
        row.insert("KVCache - Code".into(), link("Code", &base.join(c), &base));
    }
    row.insert("KVCache - Logs".into(), link("Logs", &leaf.dir, &base));
    let mut metrics = BTreeMap::new();
    for (o, g) in KV_GROUPS {
        let Some(ov) = s.get("options").and_then(|x| x.get(o)) else {
            continue;
        };
        let lat = get_num(ov, "aggregated_device_read_p95_ms")
            .or_else(|| get_num(ov, "aggregated_p95_latency_ms"));
        for (m, v) in [
            (
                "Throughput (tok/s)",
                get_num(ov, "aggregated_storage_throughput_tokens_per_sec"),
            ),
            (
                "Read B/W (GiB/s)",
                get_num(ov, "aggregated_read_bandwidth_gbps"),
            ),
            (
                "Write B/W (GiB/s)",
                get_num(ov, "aggregated_write_bandwidth_gbps"),
            ),
            ("P95 Read Latency (ms)", lat),
        ] {
            if let Some(x) = v {
                row.insert(format!("KVCache {g} - {m}"), num_value(x));
                metrics.insert(format!("option{o} {m}"), x);
            }
        }
    }
    let cat = leaf
        .verification()
        .unwrap_or_else(|| Category::parse(&loc.division).unwrap_or(Category::Open));
    let o1 = metrics.get("option1 Read B/W (GiB/s)").copied();
    Some(TableRow {
        division: loc.division.clone(),
        org: loc.org.clone(),
        system: loc.system.clone(),
        benchmark: "kv_cache".into(),
        model: leaf.md("model").and_then(lenient::text).unwrap_or_default(),
        accelerator: String::new(),
        runs: cands.len(),
        category: cat,
        headline: o1
            .map(|x| format!("Option 1 read {x:.3} GB/s"))
            .unwrap_or_else(|| "n/a".into()),
        path: wdir.to_path_buf(),
        metrics,
        issues,
    })
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) => match (
            o.get("text").and_then(|t| t.as_str()),
            o.get("href").and_then(|t| t.as_str()),
        ) {
            (Some(t), Some(h)) => format!("<a href=\"{h}\">{t}</a>"),
            _ => String::new(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.rows).unwrap_or_else(|_| "[]".into())
    }

    pub fn to_csv(&self) -> String {
        let cols = columns();
        let mut s = cols
            .iter()
            .map(|c| csv_cell(c))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
        for r in &self.rows {
            let line: Vec<String> = cols
                .iter()
                .map(|c| csv_cell(&r.get(c).map(cell_text).unwrap_or_default()))
                .collect();
            s.push_str(&line.join(","));
            s.push('\n');
        }
        s
    }

    /// Write `results.json` and `results.csv` into `out_dir` atomically (temp file + rename).
    pub fn write(&self, out_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(out_dir)?;
        atomic_write(&out_dir.join("results.json"), self.to_json().as_bytes())?;
        atomic_write(&out_dir.join("results.csv"), self.to_csv().as_bytes())
    }

    /// Write the per-model rollups next to the data (`training/<model>/run/`,
    /// `checkpointing/<model>/`, `vector_database/<engine>/<index>/run/`, `kv_cache/<model>/run/`).
    pub fn write_rollups(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for (row, t) in self.rows.iter().zip(&self.table) {
            let one = Report {
                rows: vec![row.clone()],
                table: vec![t.clone()],
                skipped: vec![],
            };
            one.write(&t.path)?;
            written.push(t.path.clone());
        }
        Ok(written)
    }

    /// Plain-text table for the terminal, followed by skipped leaves with their reasons.
    pub fn render_table(&self) -> String {
        let mut out = format!(
            "{:<8} {:<14} {:<28} {:<16} {:<12} {:<6} {:>4} {:<8} {}\n",
            "DIV", "ORG", "SYSTEM", "BENCHMARK", "MODEL", "ACCEL", "RUNS", "CATEGORY", "RESULT"
        );
        for t in &self.table {
            out.push_str(&format!(
                "{:<8} {:<14} {:<28} {:<16} {:<12} {:<6} {:>4} {:<8} {}\n",
                t.division,
                t.org,
                t.system,
                t.benchmark,
                t.model,
                t.accelerator,
                t.runs,
                t.category.to_string(),
                t.headline
            ));
        }
        for s in &self.skipped {
            out.push_str(&format!("skipped {}: {}\n", s.path.display(), s.reason));
        }
        out
    }
}

pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
