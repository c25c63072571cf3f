//! What one host is: memory, CPUs, OS, kernel, mounts, the filesystems of the benchmark's paths,
//! drives, and I/O counters (mlpstorage.md §6.1).
//!
//! Collection is split in two so that local, MPI and SSH collection share one parser: a
//! [`RawHost`] holds the text of the `/proc` and `/etc` files plus path and drive probes, and
//! [`HostInfo::from_raw`] turns it into the typed snapshot. The JSON keys are those of the Python
//! reference (`HostInfo.to_dict` in `mlpstorage/rules/models.py`); `mounts`, `paths`, `drives` and
//! `errors` are additions of this implementation and are omitted when empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Memory of one host in bytes (`/proc/meminfo` kB × 1024).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostMemory {
    pub total: u64,
    pub available: Option<u64>,
    pub used: Option<u64>,
    pub free: Option<u64>,
    pub active: Option<u64>,
    pub inactive: Option<u64>,
    pub buffers: Option<u64>,
    pub cached: Option<u64>,
    pub shared: Option<u64>,
}

/// CPU summary of one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostCpu {
    /// Physical cores: distinct (physical id, core id) pairs, or the logical count without them.
    pub num_cores: u64,
    pub num_logical_cores: u64,
    pub model: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_sockets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_mhz: Option<f64>,
}

/// One row of `/proc/diskstats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskStats {
    pub device_name: String,
    pub reads_completed: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub time_reading_ms: u64,
    pub writes_completed: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub time_writing_ms: u64,
    pub ios_in_progress: u64,
    pub time_doing_ios_ms: u64,
    pub weighted_time_doing_ios_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discards_completed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discards_merged: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sectors_discarded: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_discarding_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_requests_completed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_flushing_ms: Option<u64>,
}

/// One interface of `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetDev {
    pub interface_name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub rx_fifo: u64,
    pub rx_frame: u64,
    pub rx_compressed: u64,
    pub rx_multicast: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
    pub tx_fifo: u64,
    pub tx_collisions: u64,
    pub tx_carrier: u64,
    pub tx_compressed: u64,
}

/// Kernel, OS release, uptime and load of one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSystem {
    pub hostname: String,
    /// The whole `/proc/version` line, as the reference stores it.
    pub kernel_version: String,
    pub os_release: BTreeMap<String, String>,
    pub uptime_seconds: f64,
    pub load_average_1min: f64,
    pub load_average_5min: f64,
    pub load_average_15min: f64,
    pub running_processes: u64,
    pub total_processes: u64,
}

/// One line of `/proc/mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

/// Where a benchmark path lives: its mount, filesystem and space.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathInfo {
    /// The path as asked.
    pub path: String,
    /// The nearest existing ancestor (or the path itself), with symlinks resolved.
    pub resolved: String,
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub free_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A block device from `/sys/block` (loop and ram devices left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Drive {
    pub name: String,
    pub size_bytes: u64,
    pub rotational: bool,
    pub removable: bool,
    pub model: String,
}

/// The static snapshot of one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostInfo {
    pub hostname: String,
    pub memory: HostMemory,
    pub collection_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<HostCpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<DiskStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Vec<NetDev>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<HostSystem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drives: Vec<Drive>,
    /// Items that could not be collected, by item name; never fatal.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
}

/// A path probe before parsing: what `statfs` and path resolution said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathProbe {
    pub path: String,
    pub resolved: Option<String>,
    /// `(total, available, free)` bytes.
    pub space: Option<(u64, u64, u64)>,
    pub error: Option<String>,
}

/// The unparsed material of one host snapshot, as read locally or received over SSH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawHost {
    pub hostname: String,
    pub timestamp: String,
    /// File text by item name: `meminfo`, `cpuinfo`, `diskstats`, `netdev`, `version`, `loadavg`,
    /// `uptime`, `os_release`, `mounts`.
    pub files: BTreeMap<String, String>,
    pub paths: Vec<PathProbe>,
    pub drives: Vec<Drive>,
    pub errors: BTreeMap<String, String>,
}

/// The items of a snapshot and the file each is read from.
pub const HOST_FILES: [(&str, &str); 9] = [
    ("meminfo", "/proc/meminfo"),
    ("cpuinfo", "/proc/cpuinfo"),
    ("diskstats", "/proc/diskstats"),
    ("netdev", "/proc/net/dev"),
    ("version", "/proc/version"),
    ("loadavg", "/proc/loadavg"),
    ("uptime", "/proc/uptime"),
    ("os_release", "/etc/os-release"),
    ("mounts", "/proc/mounts"),
];

/// This machine's host name (`gethostname`), or `localhost` if it cannot be read.
pub fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for buf.len() bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Current UTC time as `%Y-%m-%dT%H:%M:%SZ` (the reference's `collection_timestamp`).
pub fn utc_timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl RawHost {
    /// Reads this machine's files, probes `paths` and lists drives.
    pub fn collect_local(paths: &[&Path]) -> RawHost {
        let mut raw = RawHost {
            hostname: local_hostname(),
            timestamp: utc_timestamp(),
            ..RawHost::default()
        };
        for (item, file) in HOST_FILES {
            match std::fs::read_to_string(file) {
                Ok(text) => {
                    raw.files.insert(item.to_string(), text);
                }
                Err(e) => {
                    raw.errors.insert(item.to_string(), format!("{file}: {e}"));
                }
            }
        }
        raw.paths = paths.iter().map(|p| probe_path(p)).collect();
        raw.drives = local_drives();
        raw
    }
}

/// Resolves `path` to its nearest existing ancestor and reads its filesystem space.
pub fn probe_path(path: &Path) -> PathProbe {
    let mut probe = PathProbe {
        path: path.display().to_string(),
        ..PathProbe::default()
    };
    let existing = match nearest_existing(path) {
        Ok(p) => p,
        Err(e) => {
            probe.error = Some(e);
            return probe;
        }
    };
    probe.resolved = Some(existing.display().to_string());
    match statvfs_space(&existing) {
        Ok(space) => probe.space = Some(space),
        Err(e) => probe.error = Some(format!("statvfs {}: {e}", existing.display())),
    }
    probe
}

/// The path itself or its nearest existing ancestor, canonicalised.
pub(crate) fn nearest_existing(path: &Path) -> Result<PathBuf, String> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join(path)
    };
    let mut cur: &Path = &abs;
    loop {
        if let Ok(c) = cur.canonicalize() {
            return Ok(c);
        }
        match cur.parent() {
            Some(p) => cur = p,
            None => return Err(format!("no existing ancestor of {}", path.display())),
        }
    }
}

/// `(total, available, free)` bytes of the filesystem holding `path`.
pub(crate) fn statvfs_space(path: &Path) -> std::io::Result<(u64, u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: c is a valid NUL-terminated path and st points to writable statvfs storage.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let st = unsafe { st.assume_init() };
    let frsize = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    Ok((
        st.f_blocks.saturating_mul(frsize),
        st.f_bavail.saturating_mul(frsize),
        st.f_bfree.saturating_mul(frsize),
    ))
}

fn local_drives() -> Vec<Drive> {
    let Ok(dir) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let read = |p: PathBuf| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let mut drives: Vec<Drive> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = e.path();
            drive_from_fields(
                &name,
                &read(base.join("size")),
                &read(base.join("queue/rotational")),
                &read(base.join("removable")),
                &read(base.join("device/model")),
            )
        })
        .collect();
    drives.sort_by(|a, b| a.name.cmp(&b.name));
    drives
}

/// A drive from the text of its `/sys/block/<name>` files; `None` for loop and ram devices.
pub(crate) fn drive_from_fields(
    name: &str,
    size_sectors: &str,
    rotational: &str,
    removable: &str,
    model: &str,
) -> Option<Drive> {
    if name.starts_with("loop") || name.starts_with("ram") || name.is_empty() {
        return None;
    }
    Some(Drive {
        name: name.to_string(),
        size_bytes: size_sectors.trim().parse::<u64>().unwrap_or(0) * 512,
        rotational: rotational.trim() == "1",
        removable: removable.trim() == "1",
        model: model.trim().to_string(),
    })
}

impl HostInfo {
    /// Collects this machine's snapshot, with the filesystems of `paths`.
    pub fn collect_local(paths: &[&Path]) -> HostInfo {
        HostInfo::from_raw(&RawHost::collect_local(paths))
    }

    /// Parses a raw snapshot. Items that are missing or unparsable are recorded in `errors`.
    pub fn from_raw(raw: &RawHost) -> HostInfo {
        let mut errors = raw.errors.clone();
        let file = |k: &str| raw.files.get(k).map(String::as_str);

        let meminfo = file("meminfo").map(parse_meminfo).unwrap_or_default();
        let memory = memory_from_meminfo(&meminfo);
        if memory.total == 0 && !errors.contains_key("meminfo") {
            errors.insert("meminfo".into(), "no MemTotal in /proc/meminfo".into());
        }
        let cpu = file("cpuinfo")
            .map(parse_cpuinfo)
            .filter(|c| !c.is_empty())
            .map(|c| summarize_cpuinfo(&c));
        let disks = file("diskstats").map(parse_diskstats);
        let network = file("netdev").map(parse_netdev);
        let (l1, l5, l15, running, total) = file("loadavg").map(parse_loadavg).unwrap_or_default();
        let system = HostSystem {
            hostname: raw.hostname.clone(),
            kernel_version: file("version").unwrap_or("").trim().to_string(),
            os_release: file("os_release").map(parse_os_release).unwrap_or_default(),
            uptime_seconds: file("uptime").map(parse_uptime).unwrap_or(0.0),
            load_average_1min: l1,
            load_average_5min: l5,
            load_average_15min: l15,
            running_processes: running,
            total_processes: total,
        };
        let mounts = file("mounts").map(parse_mounts).unwrap_or_default();
        let paths = raw.paths.iter().map(|p| path_info(p, &mounts)).collect();
        HostInfo {
            hostname: raw.hostname.clone(),
            memory,
            collection_timestamp: Some(raw.timestamp.clone()),
            cpu,
            disks,
            network,
            system: Some(system),
            mounts,
            paths,
            drives: raw.drives.clone(),
            errors,
        }
    }

    /// Number of physical cores (0 when unknown).
    pub fn cores(&self) -> u64 {
        self.cpu.as_ref().map_or(0, |c| c.num_cores)
    }

    /// The `PathInfo` recorded for `path`, if it was probed.
    pub fn path(&self, path: &str) -> Option<&PathInfo> {
        self.paths.iter().find(|p| p.path == path)
    }
}

fn path_info(probe: &PathProbe, mounts: &[Mount]) -> PathInfo {
    let mut info = PathInfo {
        path: probe.path.clone(),
        resolved: probe.resolved.clone().unwrap_or_default(),
        error: probe.error.clone(),
        ..PathInfo::default()
    };
    if let Some((t, a, f)) = probe.space {
        info.total_bytes = t;
        info.available_bytes = a;
        info.free_bytes = f;
    }
    if let Some(m) = mount_of(&info.resolved, mounts) {
        info.mount_point = m.mount_point.clone();
        info.device = m.device.clone();
        info.fs_type = m.fs_type.clone();
    }
    info
}

/// The mount whose mount point is the longest prefix of `path` (the last such line wins, as the
/// kernel's newest mount shadows older ones).
pub fn mount_of<'m>(path: &str, mounts: &'m [Mount]) -> Option<&'m Mount> {
    if path.is_empty() {
        return None;
    }
    let mut best: Option<&Mount> = None;
    for m in mounts {
        let mp = m.mount_point.trim_end_matches('/');
        let under = mp.is_empty()
            || path == mp
            || (path.starts_with(mp) && path.as_bytes().get(mp.len()) == Some(&b'/'));
        if under && best.is_none_or(|b| mp.len() >= b.mount_point.trim_end_matches('/').len()) {
            best = Some(m);
        }
    }
    best
}

/// `/proc/meminfo` → key → value in kB.
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect()
}

/// Memory in bytes from parsed `/proc/meminfo`, as the reference derives it.
pub fn memory_from_meminfo(m: &BTreeMap<String, u64>) -> HostMemory {
    let b = |k: &str| m.get(k).copied().unwrap_or(0) * 1024;
    let total = b("MemTotal");
    HostMemory {
        total,
        available: Some(b("MemAvailable")),
        used: Some(
            total
                .saturating_sub(b("MemFree"))
                .saturating_sub(b("Buffers"))
                .saturating_sub(b("Cached")),
        ),
        free: Some(b("MemFree")),
        active: Some(b("Active")),
        inactive: Some(b("Inactive")),
        buffers: Some(b("Buffers")),
        cached: Some(b("Cached")),
        shared: Some(b("Shmem")),
    }
}

/// `/proc/cpuinfo` → one key/value map per logical CPU.
pub fn parse_cpuinfo(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut cpus = Vec::new();
    let mut cur = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                cpus.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if !cur.is_empty() {
        cpus.push(cur);
    }
    cpus
}

/// The CPU summary of §6.1 from parsed `/proc/cpuinfo`.
pub fn summarize_cpuinfo(cpus: &[BTreeMap<String, String>]) -> HostCpu {
    let Some(first) = cpus.first() else {
        return HostCpu::default();
    };
    let model = first
        .get("model name")
        .or_else(|| first.get("Model"))
        .cloned()
        .unwrap_or_default();
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    for c in cpus {
        let phys = c.get("physical id");
        if let Some(p) = phys {
            sockets.insert(p.clone());
            if let Some(core) = c.get("core id") {
                cores.insert((p.clone(), core.clone()));
            }
        }
    }
    let logical = cpus.len() as u64;
    let flags: Vec<&str> = first
        .get("flags")
        .map(|f| f.split_whitespace().collect())
        .unwrap_or_default();
    let lower = model.to_lowercase();
    let architecture = if flags.contains(&"lm") {
        "x86_64"
    } else if flags.contains(&"tm") {
        "i686"
    } else if lower.contains("aarch64") || first.contains_key("CPU implementer") {
        "aarch64"
    } else if lower.contains("x86") || lower.contains("intel") || lower.contains("amd") {
        "x86_64"
    } else {
        ""
    };
    HostCpu {
        num_cores: if cores.is_empty() {
            logical
        } else {
            cores.len() as u64
        },
        num_logical_cores: logical,
        model,
        architecture: architecture.to_string(),
        num_sockets: Some(if sockets.is_empty() {
            1
        } else {
            sockets.len() as u64
        }),
        cpu_mhz: first.get("cpu MHz").and_then(|v| v.parse().ok()),
    }
}

/// `/proc/diskstats` rows (14, 18 or 20 columns).
pub fn parse_diskstats(text: &str) -> Vec<DiskStats> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 14 {
                return None;
            }
            let n: Vec<u64> = f[3..]
                .iter()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            let opt = |i: usize, min: usize| (f.len() >= min).then(|| n[i]);
            Some(DiskStats {
                device_name: f[2].to_string(),
                reads_completed: n[0],
                reads_merged: n[1],
                sectors_read: n[2],
                time_reading_ms: n[3],
                writes_completed: n[4],
                writes_merged: n[5],
                sectors_written: n[6],
                time_writing_ms: n[7],
                ios_in_progress: n[8],
                time_doing_ios_ms: n[9],
                weighted_time_doing_ios_ms: n[10],
                discards_completed: opt(11, 18),
                discards_merged: opt(12, 18),
                sectors_discarded: opt(13, 18),
                time_discarding_ms: opt(14, 18),
                flush_requests_completed: opt(15, 20),
                time_flushing_ms: opt(16, 20),
            })
        })
        .collect()
}

/// `/proc/net/dev` interfaces (after the two header lines).
pub fn parse_netdev(text: &str) -> Vec<NetDev> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let n: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            if n.len() < 16 {
                return None;
            }
            Some(NetDev {
                interface_name: name.trim().to_string(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                rx_fifo: n[4],
                rx_frame: n[5],
                rx_compressed: n[6],
                rx_multicast: n[7],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
                tx_fifo: n[12],
                tx_collisions: n[13],
                tx_carrier: n[14],
                tx_compressed: n[15],
            })
        })
        .collect()
}

/// `/proc/loadavg` → (1, 5, 15 min load, running, total processes).
pub fn parse_loadavg(text: &str) -> (f64, f64, f64, u64, u64) {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() < 4 {
        return (0.0, 0.0, 0.0, 0, 0);
    }
    let l = |i: usize| f[i].parse().unwrap_or(0.0);
    let (r, t) = f[3].split_once('/').unwrap_or(("0", "0"));
    (
        l(0),
        l(1),
        l(2),
        r.parse().unwrap_or(0),
        t.parse().unwrap_or(0),
    )
}

/// `/proc/uptime` → seconds.
pub fn parse_uptime(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `/etc/os-release` → key → unquoted value.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            Some((
                k.trim().to_string(),
                v.trim().trim_matches(|c| c == '"' || c == '\'').to_string(),
            ))
        })
        .collect()
}

/// `/proc/mounts` lines; octal escapes such as `\040` (space) are decoded.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            Some(Mount {
                device: unescape_mount(f[0]),
                mount_point: unescape_mount(f[1]),
                fs_type: f[2].to_string(),
                options: f[3].to_string(),
            })
        })
        .collect()
}

fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nphysical id\t: 0\ncore id\t\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8124M CPU @ 3.00GHz\ncpu MHz\t\t: 3000.000\nflags\t\t: fpu lm sse\n\nprocessor\t: 1\nphysical id\t: 0\ncore id\t\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8124M CPU @ 3.00GHz\nflags\t\t: fpu lm sse\n\nprocessor\t: 2\nphysical id\t: 1\ncore id\t\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8124M CPU @ 3.00GHz\nflags\t\t: fpu lm sse\n";

    #[test]
    fn cpu_summary_counts_core_pairs_and_sockets() {
        let c = summarize_cpuinfo(&parse_cpuinfo(CPUINFO));
        assert_eq!(c.num_logical_cores, 3);
        assert_eq!(c.num_cores, 2);
        assert_eq!(c.num_sockets, Some(2));
        assert_eq!(c.architecture, "x86_64");
        assert_eq!(c.cpu_mhz, Some(3000.0));
        assert!(c.model.starts_with("Intel(R) Xeon(R) Platinum 8124M"));
    }

    #[test]
    fn meminfo_becomes_bytes_like_the_reference() {
        let m = parse_meminfo(
            "MemTotal:       16384 kB\nMemFree:  1024 kB\nMemAvailable: 8192 kB\nBuffers: 100 kB\nCached: 900 kB\nShmem: 4 kB\nHugePages_Total: 0\n",
        );
        let mem = memory_from_meminfo(&m);
        assert_eq!(mem.total, 16384 * 1024);
        assert_eq!(mem.available, Some(8192 * 1024));
        assert_eq!(mem.used, Some((16384 - 1024 - 100 - 900) * 1024));
        assert_eq!(mem.shared, Some(4096));
    }

    #[test]
    fn diskstats_optional_columns_follow_the_kernel_version() {
        let rows = parse_diskstats(
            " 254 0 vda 1 2 3 4 5 6 7 8 9 10 11\n 254 1 vda1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n bad line\n",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].discards_completed, None);
        assert_eq!(rows[0].weighted_time_doing_ios_ms, 11);
        assert_eq!(rows[1].discards_completed, Some(12));
        assert_eq!(rows[1].time_flushing_ms, Some(17));
        let v = serde_json::to_value(&rows[0]).ok();
        assert!(v.is_some_and(|v| v.get("discards_completed").is_none()));
    }

    #[test]
    fn netdev_skips_headers() {
        let t = "Inter-|   Receive  |  Transmit\n face |bytes packets\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n";
        let n = parse_netdev(t);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].interface_name, "lo");
        assert_eq!(n[0].tx_bytes, 100);
    }

    #[test]
    fn mounts_decode_escapes_and_longest_prefix_wins() {
        let m = parse_mounts(
            "/dev/vda1 / ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\nsrv:/x /mnt/my\\040data nfs4 rw 0 0\n",
        );
        assert_eq!(m[2].mount_point, "/mnt/my data");
        assert_eq!(
            mount_of("/mnt/my data/a", &m).map(|m| m.fs_type.as_str()),
            Some("nfs4")
        );
        assert_eq!(
            mount_of("/dev/shmx", &m).map(|m| m.fs_type.as_str()),
            Some("ext4")
        );
        assert_eq!(
            mount_of("/dev/shm", &m).map(|m| m.fs_type.as_str()),
            Some("tmpfs")
        );
    }

    #[test]
    fn loadavg_uptime_os_release() {
        assert_eq!(
            parse_loadavg("0.50 0.75 0.80 2/500 12345"),
            (0.5, 0.75, 0.8, 2, 500)
        );
        assert_eq!(parse_uptime("12345.67 98765.43"), 12345.67);
        let os = parse_os_release("NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n# c\n");
        assert_eq!(os.get("VERSION_ID").map(String::as_str), Some("12"));
    }

    #[test]
    fn local_collection_reads_this_machine() {
        let dir = std::env::temp_dir();
        let missing = dir.join("mlps-no-such-dir/sub");
        let h = HostInfo::collect_local(&[&dir, &missing]);
        assert!(!h.hostname.is_empty());
        assert!(h.memory.total > 0, "{:?}", h.errors);
        assert!(h.cores() > 0);
        assert!(!h.mounts.is_empty());
        let p = &h.paths[1];
        assert!(p.error.is_none(), "{p:?}");
        assert!(p.total_bytes > 0 && !p.fs_type.is_empty() && !p.mount_point.is_empty());
        let json = serde_json::to_value(&h).ok();
        let keys = [
            "hostname",
            "memory",
            "collection_timestamp",
            "cpu",
            "system",
        ];
        assert!(json.is_some_and(|j| keys.iter().all(|k| j.get(k).is_some())));
    }

    #[test]
    fn drives_skip_loop_and_ram() {
        assert!(drive_from_fields("loop0", "8", "0", "0", "").is_none());
        let d = drive_from_fields("nvme0n1", "2048", "0", "0", "Samsung SSD\n");
        assert_eq!(
            d.map(|d| (d.size_bytes, d.model)),
            Some((2048 * 512, "Samsung SSD".into()))
        );
    }
}
