//! Shared benchmark plumbing for `cargo xtask bench …`: find and run fio with a job file, parse
//! its JSON, drop the page cache, alternate two contenders (ABAB), take medians, print tables and
//! describe the machine. Workload-specific benches (io, training, checkpoint) build on this.
#![allow(dead_code)] // helpers are shared by several benches; not every bench uses all of them

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mlps_io_core::{DropMethod, PageCache};

/// The fio binary, or an error telling the user how to install it (nothing is installed silently).
pub fn fio_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FIO") {
        return Ok(PathBuf::from(p));
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("fio");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "fio not found on PATH: install it with `apt-get install -y fio` (or set FIO=/path/to/fio)"
    )
}

/// `fio --version`.
pub fn fio_version(fio: &Path) -> String {
    Command::new(fio)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// What one fio run measured (summed over jobs; fio's `group_reporting` semantics).
#[derive(Clone, Debug, Default)]
pub struct FioResult {
    /// Read + write bytes per second, as fio reports (`bw_bytes`, summed over read and write).
    pub bw_bytes: f64,
    /// Read + write IOPS.
    pub iops: f64,
    /// Bytes moved.
    pub io_bytes: u64,
    /// Longest job runtime in ms (fio's; includes `end_fsync`).
    pub runtime_ms: u64,
    /// User CPU % (of one CPU) averaged over jobs, as fio reports.
    pub usr_cpu: f64,
    /// System CPU %.
    pub sys_cpu: f64,
    /// Wall time of the fio process (includes start-up and layout).
    pub wall_s: f64,
    /// The parsed JSON.
    pub json: serde_json::Value,
}

/// Parse fio's `--output-format=json` (tolerates text lines before the JSON, e.g. "opendir added").
pub fn parse_fio_json(text: &str) -> Result<FioResult> {
    let start = text
        .find("\n{")
        .map(|i| i + 1)
        .or_else(|| text.starts_with('{').then_some(0));
    let Some(start) = start else {
        bail!(
            "no JSON object in fio output: {}",
            &text[..text.len().min(400)]
        )
    };
    let json: serde_json::Value =
        serde_json::from_str(&text[start..]).context("parsing fio JSON")?;
    let jobs = json
        .get("jobs")
        .and_then(|j| j.as_array())
        .context("fio JSON has no jobs")?;
    let mut r = FioResult::default();
    for job in jobs {
        if job.get("error").and_then(|e| e.as_i64()).unwrap_or(0) != 0 {
            bail!("fio job {} failed: error {}", job["jobname"], job["error"]);
        }
        for dir in ["read", "write"] {
            let d = &job[dir];
            r.bw_bytes += d["bw_bytes"].as_f64().unwrap_or(0.0);
            r.iops += d["iops"].as_f64().unwrap_or(0.0);
            r.io_bytes += d["io_bytes"].as_u64().unwrap_or(0);
            r.runtime_ms = r.runtime_ms.max(d["runtime"].as_u64().unwrap_or(0));
        }
        r.usr_cpu += job["usr_cpu"].as_f64().unwrap_or(0.0);
        r.sys_cpu += job["sys_cpu"].as_f64().unwrap_or(0.0);
    }
    let n = jobs.len().max(1) as f64;
    r.usr_cpu /= n;
    r.sys_cpu /= n;
    r.json = json;
    Ok(r)
}

/// Write `job` (fio job-file text) next to the data and run it; returns the parsed result.
pub fn run_fio(fio: &Path, job: &str, workdir: &Path, name: &str) -> Result<FioResult> {
    let jobfile = workdir.join(format!("{name}.fio"));
    std::fs::write(&jobfile, job).with_context(|| format!("writing {}", jobfile.display()))?;
    let t0 = Instant::now();
    let out = Command::new(fio)
        .arg("--output-format=json")
        .arg(&jobfile)
        .current_dir(workdir)
        .output()
        .with_context(|| format!("running {}", fio.display()))?;
    let wall_s = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "fio {} failed ({}): {}",
            jobfile.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut r = parse_fio_json(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("fio job {}", jobfile.display()))?;
    r.wall_s = wall_s;
    Ok(r)
}

/// Empty the page cache for `files` (whole cache when root, else per-file fadvise).
pub fn drop_caches<P: AsRef<Path>>(files: &[P]) -> DropMethod {
    PageCache::evict(files)
}

/// Median (mean of the middle two for even counts); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// A distribution-free confidence interval for the median of `v`: the order statistics
/// `(x_(k), x_(n+1-k))` with the largest `k` whose coverage (from the binomial(n, ½) law of
/// how many values fall below the median) is still at least `level`. Returns
/// `(low, high, coverage)`; with fewer than 2 values, or too few for `level`, the full range and
/// its coverage.
pub fn median_ci(v: &[f64], level: f64) -> (f64, f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, 0.0);
    }
    // P(Binomial(n, 1/2) <= j) for j = 0..n.
    let mut cdf = Vec::with_capacity(n + 1);
    let mut term = 0.5f64.powi(n as i32); // C(n, 0) / 2^n
    let mut acc = 0.0;
    for j in 0..=n {
        acc += term;
        cdf.push(acc);
        term = term * (n - j) as f64 / (j + 1) as f64;
    }
    // Interval (x_(k), x_(n+1-k)), 1-based k: coverage = 1 - 2 P(X <= k-1).
    let coverage = |k: usize| 1.0 - 2.0 * cdf[k - 1];
    let mut k = 1;
    while k < n.div_ceil(2) && coverage(k + 1) >= level {
        k += 1;
    }
    (s[k - 1], s[n - k], if n >= 2 { coverage(k) } else { 0.0 })
}

/// Minimum and maximum.
pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Measurements of two contenders run alternately.
#[derive(Clone, Debug, Default)]
pub struct Pairs {
    /// Contender A (the reference, e.g. fio), one value per pair.
    pub a: Vec<f64>,
    /// Contender B (ours).
    pub b: Vec<f64>,
}

impl Pairs {
    /// Median of A.
    pub fn median_a(&self) -> f64 {
        median(&self.a)
    }
    /// Median of B.
    pub fn median_b(&self) -> f64 {
        median(&self.b)
    }
    /// median(B) / median(A).
    pub fn ratio(&self) -> f64 {
        self.median_b() / self.median_a()
    }
    /// Median of the per-pair ratios B/A (robust to drift across pairs).
    pub fn median_pair_ratio(&self) -> f64 {
        median(&self.pair_ratios())
    }
    /// The per-pair ratios B/A, in run order.
    pub fn pair_ratios(&self) -> Vec<f64> {
        self.a.iter().zip(&self.b).map(|(a, b)| b / a).collect()
    }
}

/// Run A then B, `pairs` times (ABAB…), calling `before` (e.g. a cache drop) ahead of every run.
/// Each closure returns the figure of merit (higher is better, e.g. bytes/s).
pub fn abab(
    pairs: usize,
    before: impl FnMut(),
    a: impl FnMut() -> Result<f64>,
    b: impl FnMut() -> Result<f64>,
) -> Result<Pairs> {
    run_pairs(pairs, false, before, a, b)
}

/// Like [`abab`], but the order alternates from pair to pair (A B, B A, A B, …), so a position
/// effect (the run right after a cache drop, or right after the other contender's writes, being
/// faster or slower) falls on both contenders equally. `before` still runs ahead of every run.
pub fn abba(
    pairs: usize,
    before: impl FnMut(),
    a: impl FnMut() -> Result<f64>,
    b: impl FnMut() -> Result<f64>,
) -> Result<Pairs> {
    run_pairs(pairs, true, before, a, b)
}

/// `pairs` pairs of one A run and one B run, `before` ahead of each; with `alternate`, B goes
/// first in every second pair.
fn run_pairs(
    pairs: usize,
    alternate: bool,
    mut before: impl FnMut(),
    mut a: impl FnMut() -> Result<f64>,
    mut b: impl FnMut() -> Result<f64>,
) -> Result<Pairs> {
    let mut p = Pairs::default();
    for i in 0..pairs {
        let b_first = alternate && i % 2 == 1;
        for b_turn in [b_first, !b_first] {
            before();
            if b_turn {
                p.b.push(b()?);
            } else {
                p.a.push(a()?);
            }
        }
    }
    Ok(p)
}

/// Space-separated MB/s of each run, for the per-run lines under a table.
pub fn fmt_runs(v: &[f64]) -> String {
    v.iter().map(|x| fmt_mbps(*x)).collect::<Vec<_>>().join(" ")
}

/// A plain text table (also valid Markdown).
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    /// Append a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
    /// Markdown rendering with padded columns.
    pub fn to_markdown(&self) -> String {
        let n = self.headers.len();
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, width) in w.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                s.push_str(&format!(" {c:<width$} |"));
            }
            s.push('\n');
            s
        };
        let mut out = line(&self.headers);
        out.push('|');
        for wi in &w {
            out.push_str(&format!("{}|", "-".repeat(wi + 2)));
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// One line describing the machine: CPU model, cores, memory, kernel, filesystem of `dir`.
pub fn machine_description(dir: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let fs = filesystem_of(dir).unwrap_or_else(|| "unknown fs".into());
    format!("{model}, {cores} cores, {mem_gib:.0} GiB RAM, Linux {kernel}, {fs}")
}

/// "fstype on device" for the mount holding `dir` (longest matching mount point).
pub fn filesystem_of(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        if dir.starts_with(f[1]) && best.as_ref().is_none_or(|(n, _)| f[1].len() > *n) {
            best = Some((f[1].len(), format!("{} on {} ({})", f[2], f[0], f[1])));
        }
    }
    best.map(|b| b.1)
}

/// Counters of one block device from `/sys/class/block/<dev>/stat`: what reached the device,
/// so a bench can check that both contenders sent the same requests (count and size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCounters {
    /// Read requests completed.
    pub read_ios: u64,
    /// 512-byte sectors read.
    pub read_sectors: u64,
    /// Write requests completed.
    pub write_ios: u64,
    /// 512-byte sectors written.
    pub write_sectors: u64,
}

impl BlockCounters {
    /// Counters accumulated since `earlier`.
    pub fn since(&self, earlier: &BlockCounters) -> BlockCounters {
        BlockCounters {
            read_ios: self.read_ios.saturating_sub(earlier.read_ios),
            read_sectors: self.read_sectors.saturating_sub(earlier.read_sectors),
            write_ios: self.write_ios.saturating_sub(earlier.write_ios),
            write_sectors: self.write_sectors.saturating_sub(earlier.write_sectors),
        }
    }
    /// Add `other` to these counters.
    pub fn add(&mut self, other: &BlockCounters) {
        self.read_ios += other.read_ios;
        self.read_sectors += other.read_sectors;
        self.write_ios += other.write_ios;
        self.write_sectors += other.write_sectors;
    }
    /// "r <n> × <KiB> KiB, w <n> × <KiB> KiB" (mean request size).
    pub fn describe(&self) -> String {
        let kib = |ios: u64, sectors: u64| {
            if ios == 0 {
                0.0
            } else {
                sectors as f64 * 512.0 / 1024.0 / ios as f64
            }
        };
        format!(
            "r {} × {:.0} KiB, w {} × {:.0} KiB",
            self.read_ios,
            kib(self.read_ios, self.read_sectors),
            self.write_ios,
            kib(self.write_ios, self.write_sectors)
        )
    }
}

/// The `stat` file of the block device holding `dir` (from `/proc/self/mounts`), if it is a
/// `/dev/<name>` with a `/sys/class/block/<name>/stat`.
pub fn block_stat_path(dir: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || !f[0].starts_with("/dev/") {
            continue;
        }
        if dir.starts_with(f[1]) && best.as_ref().is_none_or(|(n, _)| f[1].len() > *n) {
            best = Some((f[1].len(), f[0].to_string()));
        }
    }
    let dev = std::fs::canonicalize(best?.1).ok()?;
    let name = dev.file_name()?.to_str()?.to_string();
    let p = Path::new("/sys/class/block").join(name).join("stat");
    p.is_file().then_some(p)
}

/// Read the counters from a `stat` file found by [`block_stat_path`].
pub fn read_block_counters(stat: &Path) -> Option<BlockCounters> {
    let text = std::fs::read_to_string(stat).ok()?;
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    (v.len() >= 7).then(|| BlockCounters {
        read_ios: v[0],
        read_sectors: v[2],
        write_ios: v[4],
        write_sectors: v[6],
    })
}

/// UTC timestamp like `2026-11-28 17:00 UTC` (from `date`, to avoid a time-zone dependency).
pub fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Human units: bytes/s as MB/s (10^6) with no decimals above 100.
pub fn fmt_mbps(bps: f64) -> String {
    let m = bps / 1e6;
    if m >= 100.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_ci_uses_binomial_order_statistics() {
        let v: Vec<f64> = (1..=9).map(f64::from).collect();
        // n = 9: (x_2, x_8) covers 1 - 2 * 10/512 = 96.1 %; (x_3, x_7) only 82 %.
        let (lo, hi, cov) = median_ci(&v, 0.95);
        assert_eq!((lo, hi), (2.0, 8.0));
        assert!((cov - (1.0 - 20.0 / 512.0)).abs() < 1e-12, "{cov}");
        let (lo, hi, _) = median_ci(&v, 0.80);
        assert_eq!((lo, hi), (3.0, 7.0));
        // n = 5: only the full range reaches 93.75 %.
        let (lo, hi, cov) = median_ci(&[5.0, 1.0, 4.0, 2.0, 3.0], 0.95);
        assert_eq!((lo, hi), (1.0, 5.0));
        assert!((cov - 0.9375).abs() < 1e-12);
        assert_eq!(median_ci(&[7.0], 0.95), (7.0, 7.0, 0.0));
    }

    #[test]
    fn abba_alternates_the_order() {
        let order = std::cell::RefCell::new(String::new());
        let p = abba(
            3,
            || {},
            || {
                order.borrow_mut().push('A');
                Ok(1.0)
            },
            || {
                order.borrow_mut().push('B');
                Ok(2.0)
            },
        )
        .unwrap_or_default();
        assert_eq!(order.borrow().as_str(), "ABBAAB");
        assert_eq!(p.pair_ratios(), vec![2.0, 2.0, 2.0]);
    }
}
