//! Host collection on another machine: a POSIX `sh` script that prints the same files and probes
//! that [`RawHost::collect_local`](crate::host::RawHost::collect_local) reads, in marked sections,
//! and the parser that turns its output back into a [`RawHost`]. Any transport that can run a
//! command remotely (SSH here, see `ssh` with feature `ssh`) uses these two functions, so remote
//! and local snapshots go through the same parser. The script needs only `sh`, `cat`, `uname`,
//! `date`, `readlink -f` and GNU `stat -f`; no Python on the remote host.

use crate::host::{Drive, HOST_FILES, PathProbe, RawHost, drive_from_fields};
use crate::launch::shell_quote;

const MARK: &str = "@@mlps@@ ";

/// The script that prints one host's snapshot, probing `paths`.
pub fn collect_script(paths: &[&str]) -> String {
    let mut s = String::from(
        "LC_ALL=C; export LC_ALL\nsec() { printf '\\n%s%s\\n' '@@mlps@@ ' \"$1\"; }\n\
         sec hostname; uname -n\nsec timestamp; date -u +%Y-%m-%dT%H:%M:%SZ\n",
    );
    for (item, file) in HOST_FILES {
        s.push_str(&format!(
            "sec {item}; cat {file} 2>/dev/null || sec error:{item}\n"
        ));
    }
    for p in paths {
        let q = shell_quote(p);
        s.push_str(&format!(
            "sec path; printf '%s\\n' {q}; p={q}; while [ ! -e \"$p\" ] && [ \"$p\" != / ]; do \
             p=$(dirname -- \"$p\"); done; readlink -f -- \"$p\"; \
             stat -f -c '%S %b %a %f' -- \"$p\" 2>&1\n"
        ));
    }
    s.push_str(
        "for d in /sys/block/*; do [ -e \"$d\" ] || continue; sec drive; echo \"${d##*/}\"; \
         for f in size queue/rotational removable device/model; do \
         cat \"$d/$f\" 2>/dev/null || echo; done; done\nsec end\n",
    );
    s
}

/// Parses the output of [`collect_script`]. Fails only when the output is not from the script.
pub fn parse_output(text: &str) -> Result<RawHost, String> {
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix(MARK) {
            sections.push((name.to_string(), Vec::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push(line);
        }
    }
    if !sections.iter().any(|(n, _)| n == "end") {
        return Err(format!(
            "the remote collection script did not finish; its output was:\n{}",
            text.chars().take(2000).collect::<String>()
        ));
    }
    let mut raw = RawHost::default();
    for (name, body) in sections {
        // Each section starts after the marker line and ends with the blank line `sec` prints.
        let mut body = body;
        if body.last().is_some_and(|l| l.is_empty()) {
            body.pop();
        }
        match name.as_str() {
            "hostname" => raw.hostname = body.first().unwrap_or(&"").trim().to_string(),
            "timestamp" => raw.timestamp = body.first().unwrap_or(&"").trim().to_string(),
            "path" => raw.paths.push(parse_path(&body)),
            "drive" => {
                let f = |i: usize| body.get(i).copied().unwrap_or("");
                if let Some(d) = drive_from_fields(f(0), f(1), f(2), f(3), f(4)) {
                    raw.drives.push(d);
                }
            }
            "end" => {}
            other => {
                if let Some(item) = other.strip_prefix("error:") {
                    raw.files.remove(item);
                    raw.errors
                        .insert(item.to_string(), "cannot read on the remote host".into());
                } else if HOST_FILES.iter().any(|(i, _)| *i == other) {
                    let mut t = body.join("\n");
                    t.push('\n');
                    raw.files.insert(other.to_string(), t);
                }
            }
        }
    }
    raw.drives
        .sort_by(|a: &Drive, b: &Drive| a.name.cmp(&b.name));
    Ok(raw)
}

fn parse_path(body: &[&str]) -> PathProbe {
    let path = body.first().unwrap_or(&"").to_string();
    let resolved = body
        .get(1)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let stat = body.get(2).copied().unwrap_or("");
    let nums: Vec<u64> = stat
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let (space, error) = if let [bs, blocks, avail, free] = nums[..] {
        (Some((blocks * bs, avail * bs, free * bs)), None)
    } else {
        (None, Some(format!("stat -f: {}", stat.trim())))
    };
    PathProbe {
        path,
        resolved,
        space,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostInfo;

    #[test]
    fn the_script_run_locally_matches_local_collection() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let odd = dir.path().join("it's a dir/not yet");
        let odd = odd.to_string_lossy().into_owned();
        let script = collect_script(&[&odd]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output();
        let Ok(out) = out else {
            eprintln!("skipped: no sh");
            return;
        };
        let raw = parse_output(&String::from_utf8_lossy(&out.stdout));
        let raw = raw.unwrap_or_else(|e| panic!("{e}"));
        let remote = HostInfo::from_raw(&raw);
        let local = HostInfo::collect_local(&[std::path::Path::new(&odd)]);
        assert_eq!(remote.hostname, local.hostname);
        assert_eq!(remote.memory.total, local.memory.total);
        assert_eq!(
            remote.cpu.as_ref().map(|c| c.num_logical_cores),
            local.cpu.as_ref().map(|c| c.num_logical_cores)
        );
        assert_eq!(remote.mounts, local.mounts);
        assert_eq!(remote.drives, local.drives);
        let (r, l) = (&remote.paths[0], &local.paths[0]);
        assert_eq!(r.path, odd);
        assert_eq!(
            (&r.resolved, &r.mount_point, &r.fs_type),
            (&l.resolved, &l.mount_point, &l.fs_type)
        );
        assert_eq!(r.total_bytes, l.total_bytes);
        assert!(remote.errors.is_empty(), "{:?}", remote.errors);
        assert_eq!(
            remote.system.as_ref().map(|s| &s.kernel_version),
            local.system.as_ref().map(|s| &s.kernel_version)
        );
    }

    #[test]
    fn truncated_output_is_an_error() {
        assert!(parse_output("@@mlps@@ hostname\nx\n").is_err());
        assert!(parse_output("sh: not found").is_err());
    }
}
