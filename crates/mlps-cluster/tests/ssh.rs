//! `SshCollector` against a real `sshd` started by the test on 127.0.0.1 (recipe of
//! ecosystem.md §1c). Needs `--features ssh` and `openssh-server` (`/usr/sbin/sshd`) plus
//! `ssh-keygen`; skipped with a printed reason when they are absent.
#![cfg(feature = "ssh")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mlps_cluster::{HostKeyPolicy, PreflightError, SshCollector, SshError, check_ssh_reachable};

const SSHD: &str = "/usr/sbin/sshd";

struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    pid: Option<i32>,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) with a pid we started and a valid signal has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

fn keygen(path: &Path) -> bool {
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

fn start_sshd() -> Result<Sshd, String> {
    if !Path::new(SSHD).exists() {
        return Err(format!(
            "{SSHD} not found (apt-get install -y openssh-server)"
        ));
    }
    std::fs::create_dir_all("/run/sshd").map_err(|e| format!("cannot create /run/sshd: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    for k in ["host_key", "other_host_key", "client_key", "stranger_key"] {
        if !keygen(&d.join(k)) {
            return Err(
                "ssh-keygen failed or is missing (apt-get install -y openssh-client)".into(),
            );
        }
    }
    std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let cfg = format!(
        "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n\
         StrictModes no\n",
        d = d.display()
    );
    std::fs::write(d.join("sshd_config"), cfg).map_err(|e| e.to_string())?;
    let st = Command::new(SSHD)
        .arg("-f")
        .arg(d.join("sshd_config"))
        .arg("-E")
        .arg(d.join("sshd.log"))
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("sshd failed to start: {st}"));
    }
    let mut sshd = Sshd {
        dir,
        port,
        pid: None,
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let pid = std::fs::read_to_string(sshd.dir.path().join("sshd.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if pid.is_some() {
            sshd.pid = pid;
        }
        if pid.is_some() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(sshd);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("sshd did not start listening within 10 s".into())
}

fn known_hosts_line(sshd: &Sshd, key_file: &str) -> String {
    let pubkey = std::fs::read_to_string(sshd.dir.path().join(key_file)).unwrap_or_default();
    let mut f = pubkey.split_whitespace();
    format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port,
        f.next().unwrap_or(""),
        f.next().unwrap_or("")
    )
}

fn collector(sshd: &Sshd, known_hosts: PathBuf, policy: HostKeyPolicy) -> SshCollector {
    let user = Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "root".into());
    SshCollector {
        user,
        port: sshd.port,
        private_key: sshd.dir.path().join("client_key"),
        known_hosts,
        policy,
        timeout: Duration::from_secs(10),
    }
}

#[test]
fn ssh_collection_checks_host_keys_and_collects_a_host() {
    let sshd = match start_sshd() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let d = sshd.dir.path().to_path_buf();
    let data = d.join("data dir");
    let _ = std::fs::create_dir(&data);

    // Known key: collection works and sees what local collection sees.
    let good = d.join("known_hosts_good");
    let _ = std::fs::write(&good, known_hosts_line(&sshd, "host_key.pub"));
    let c = collector(&sshd, good, HostKeyPolicy::Strict);
    let info = c.collect("127.0.0.1", &[&data]);
    let info = info.unwrap_or_else(|e| panic!("{e}"));
    let local = mlps_cluster::HostInfo::collect_local(&[&data]);
    assert_eq!(info.hostname, local.hostname);
    assert_eq!(info.memory.total, local.memory.total);
    assert!(info.memory.total > 0);
    assert_eq!(info.paths[0].path, data.display().to_string());
    assert_eq!(info.paths[0].fs_type, local.paths[0].fs_type);
    assert_eq!(info.paths[0].total_bytes, local.paths[0].total_bytes);
    let out = c.run("127.0.0.1", "echo hi; exit 3");
    assert!(
        matches!(&out, Ok(o) if o.stdout == "hi\n" && o.status == 3),
        "{out:?}"
    );

    // Wrong (changed) host key: refused, also when new keys are accepted.
    let wrong = d.join("known_hosts_wrong");
    let _ = std::fs::write(&wrong, known_hosts_line(&sshd, "other_host_key.pub"));
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let r = collector(&sshd, wrong.clone(), policy).collect("127.0.0.1", &[]);
        assert!(
            matches!(r, Err(SshError::HostKeyChanged { .. })),
            "{policy:?}: {r:?}"
        );
    }

    // Unknown host: refused unless the user opts in; opting in records the key.
    let empty = d.join("known_hosts_new");
    let r = collector(&sshd, empty.clone(), HostKeyPolicy::Strict).collect("127.0.0.1", &[]);
    assert!(matches!(r, Err(SshError::UnknownHostKey { .. })), "{r:?}");
    let r = collector(&sshd, empty.clone(), HostKeyPolicy::AcceptNew).run("127.0.0.1", "true");
    assert!(r.is_ok(), "{r:?}");
    let recorded = std::fs::read_to_string(&empty).unwrap_or_default();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{recorded}"
    );
    let r = collector(&sshd, empty.clone(), HostKeyPolicy::Strict).run("127.0.0.1", "true");
    assert!(r.is_ok(), "{r:?}");

    // A key the server does not authorise.
    let mut stranger = collector(&sshd, empty.clone(), HostKeyPolicy::Strict);
    stranger.private_key = d.join("stranger_key");
    let r = stranger.run("127.0.0.1", "true");
    assert!(matches!(r, Err(SshError::Auth { .. })), "{r:?}");

    // Several hosts: good ones are collected, failures are reported per host.
    let reach = collector(&sshd, empty.clone(), HostKeyPolicy::Strict)
        .check_reachable(&["127.0.0.1".into(), "localhost".into()]);
    assert_eq!(reach.len(), 1, "{reach:?}");
    assert!(matches!(&reach[0], (h, SshError::UnknownHostKey { .. }) if h == "localhost"));
    let (cluster, errors) = collector(&sshd, empty, HostKeyPolicy::Strict)
        .collect_all(&["127.0.0.1".into(), "localhost".into()], &[]);
    assert_eq!(cluster.num_hosts, 1);
    assert_eq!(cluster.total_memory_bytes, local.memory.total);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "localhost");
}

/// The preflight runs the real OpenSSH client (as mpirun does) through an `ssh -F <config>` agent
/// whose host alias points at the test's sshd: a good key passes and records the host key
/// (accept-new), a changed host key and an unauthorised key fail naming the host and the fix.
#[test]
fn ssh_preflight_with_the_openssh_client() {
    let sshd = match start_sshd() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    if mlps_cluster::preflight::find_executable("ssh").is_none() {
        eprintln!("skipped: no ssh client (apt-get install -y openssh-client)");
        return;
    }
    let d = sshd.dir.path().to_path_buf();
    let user = Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "root".into());
    let config = |name: &str, key: &str, known: &str| {
        let path = d.join(format!("ssh_config_{name}"));
        let text = format!(
            "Host mlps-test-node\n  HostName 127.0.0.1\n  Port {}\n  User {user}\n  \
             IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n",
            sshd.port,
            d.join(key).display(),
            d.join(known).display()
        );
        assert!(std::fs::write(&path, text).is_ok());
        vec!["ssh".to_string(), "-F".into(), path.display().to_string()]
    };
    let hosts = ["mlps-test-node".to_string()];
    let timeout = Duration::from_secs(5);

    // Good key, unknown host key: passes and records the key.
    let errs = check_ssh_reachable(&hosts, timeout, &config("ok", "client_key", "kh_new"));
    assert!(errs.is_empty(), "{errs:?}");
    let recorded = std::fs::read_to_string(d.join("kh_new")).unwrap_or_default();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{recorded}"
    );

    // A different key recorded for the host: refused, fix names ssh-keygen -R.
    assert!(
        std::fs::write(
            d.join("kh_changed"),
            known_hosts_line(&sshd, "other_host_key.pub")
        )
        .is_ok()
    );
    let errs = check_ssh_reachable(
        &hosts,
        timeout,
        &config("changed", "client_key", "kh_changed"),
    );
    let text = errs.first().map(ToString::to_string).unwrap_or_default();
    assert!(
        matches!(errs.as_slice(), [PreflightError::SshUnreachable { host, .. }] if host == "mlps-test-node")
            && text.contains("ssh-keygen -R mlps-test-node"),
        "{text}"
    );

    // A key the server does not know: refused, fix names key authentication.
    let errs = check_ssh_reachable(
        &hosts,
        timeout,
        &config("stranger", "stranger_key", "kh_new"),
    );
    let text = errs.first().map(ToString::to_string).unwrap_or_default();
    assert!(text.contains("ssh-copy-id mlps-test-node"), "{text}");
}
