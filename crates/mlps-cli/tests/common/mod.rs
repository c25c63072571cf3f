//! Helpers shared by the integration tests that run the real `mlpstorage` binary: an isolated
//! environment (temporary HOME / XDG_CONFIG_HOME, no `MLPSTORAGE_*` variables from the developer's
//! shell) and file-tree walks. Each test binary uses a subset, hence `dead_code` is allowed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Parameters that shrink llama3-8b to a checkpoint of a few MB per rank (2 data-parallel ranks).
pub const SMALL_CKPT_PARAMS: &[&str] = &[
    "--params",
    "model.num_layers=2",
    "model.transformer.vocab_size=1000",
    "model.transformer.hidden_size=256",
    "model.transformer.ffn_hidden_size=512",
    "model.parallelism.data=2",
];

/// A temporary directory holding HOME, the config dir and the results tree of one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    /// `rel` inside the test's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The results dir.
    pub fn rd(&self) -> PathBuf {
        self.path("results")
    }

    /// The binary as a plain `std::process::Command`, isolated from the developer's setup.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlpstorage"));
        c.env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("NO_COLOR", "1");
        for v in [
            "MLPSTORAGE_RESULTS_DIR",
            "MLPSTORAGE_SYSTEMNAME",
            "MLPSTORAGE_DATA_DIR",
            "MLPSTORAGE_CHECKPOINT_FOLDER",
            "MLPERF_SYSTEMNAME",
            "MLPERF_RESULTS_DIR",
            "MLPS_DEBUG",
            "MLPS_RANK_JOB",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// `whatif checkpointing run file` of llama3-8b on 2 processes, 2 checkpoints written and
    /// read, results in [`Env::rd`] and checkpoints in `<test dir>/ckpt`, the small model of
    /// [`SMALL_CKPT_PARAMS`] last so further `key=value` parameters can follow; `flags` go
    /// before `--params`.
    pub fn small_checkpoint_run(&self, flags: &[&str]) -> std::process::Command {
        let mut c = self.command();
        c.args(["whatif", "checkpointing", "run", "file", "-m", "llama3-8b"])
            .args([
                "-np", "2", "-cm", "8", "-at", "h100", "-sn", "s1", "--quiet",
            ])
            .args(["-ncw", "2", "-ncr", "2", "-rd"])
            .arg(self.rd())
            .arg("-cf")
            .arg(self.path("ckpt"))
            .args(flags)
            .args(SMALL_CKPT_PARAMS);
        c
    }

    /// The binary as an `assert_cmd::Command` (same environment as [`Env::command`]).
    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    /// `mlpstorage init myorg <results dir>`.
    pub fn init(&self) {
        self.cmd()
            .args(["init", "myorg"])
            .arg(self.rd())
            .assert()
            .success();
    }
}

/// Every file and directory under `p`, sorted.
pub fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.push(path.clone());
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The files under `dir` whose name is `name`, sorted.
pub fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n == name))
        .collect()
}

/// An `sshd` on 127.0.0.1 (a free port) accepting one client key, and an `ssh -F` config whose
/// host alias `mlps-test-node` points at it: with `OMPI_MCA_plm_rsh_agent` set to
/// [`Sshd::agent`], `mpirun` starts ranks on `mlps-test-node` through a real SSH login, as on a
/// remote host. [`Sshd::start_separate_host`] makes that host a machine of its own as far as a
/// rank can tell (own hostname, own view of given directories). Stopped on drop.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pid: Option<i32>,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) on the sshd this test started; no memory is touched.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

/// The host alias of the test sshd in the ssh config [`Sshd::agent`] uses.
pub const TEST_NODE: &str = "mlps-test-node";

impl Sshd {
    /// Starts the daemon, or says why it cannot (missing packages).
    pub fn start() -> Result<Sshd, String> {
        Sshd::start_in(None)
    }

    /// Starts the daemon as a separate host: in private mount and UTS namespaces
    /// (`unshare --mount --uts --propagation private`, needs root) whose hostname is
    /// [`TEST_NODE`] and in which an empty tmpfs covers each of `private_dirs` (which must
    /// exist). Everything started over SSH through it (mpirun's daemon, the ranks) inherits those
    /// namespaces, so a rank there sees its own, empty copy of those directories, as on a host
    /// whose directory is local rather than a shared mount. The mounts vanish with the last
    /// process of the namespace. Errors say why it cannot run here (not root, no unshare).
    pub fn start_separate_host(private_dirs: &[&Path]) -> Result<Sshd, String> {
        // SAFETY: geteuid(2) has no preconditions and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            return Err("a private mount namespace needs root".into());
        }
        let probe = std::process::Command::new("unshare")
            .args(["--mount", "--uts", "--propagation", "private", "true"])
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            return Err(
                "`unshare --mount --uts` failed or is missing (apt-get install -y util-linux; \
                 a container needs CAP_SYS_ADMIN)"
                    .into(),
            );
        }
        for d in private_dirs {
            if !d.is_dir() {
                return Err(format!("{} is not a directory to mount over", d.display()));
            }
        }
        Sshd::start_in(Some(private_dirs))
    }

    /// `private_dirs`: `None` runs sshd in this host's namespaces, `Some` as
    /// [`Sshd::start_separate_host`].
    fn start_in(private_dirs: Option<&[&Path]>) -> Result<Sshd, String> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            return Err("/usr/sbin/sshd not found (apt-get install -y openssh-server)".into());
        }
        std::fs::create_dir_all("/run/sshd")
            .map_err(|e| format!("cannot create /run/sshd: {e}"))?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let d = dir.path();
        for k in ["host_key", "client_key"] {
            let ok = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(k))
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
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
        let server = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n\
             StrictModes no\n",
            d = d.display()
        );
        let user = std::process::Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "root".into());
        let client = format!(
            "Host {TEST_NODE}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
             IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking accept-new\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), server).map_err(|e| e.to_string())?;
        std::fs::write(d.join("ssh_config"), client).map_err(|e| e.to_string())?;
        let mut command = match private_dirs {
            None => {
                let mut c = std::process::Command::new(sshd);
                c.arg("-f")
                    .arg(d.join("sshd_config"))
                    .arg("-E")
                    .arg(d.join("sshd.log"));
                c
            }
            Some(dirs) => {
                // The shell runs in the new namespaces: tmpfs over each directory, the host's
                // name, then it becomes sshd (which daemonises inside them).
                let mut c = std::process::Command::new("unshare");
                c.args(["--mount", "--uts", "--propagation", "private", "--"])
                    .args(["sh", "-c"])
                    .arg(
                        "set -e; h=$1; shift; for d in \"$@\"; do \
                         mount -t tmpfs -o size=64m,mode=0755 mlps-test-node-private \"$d\"; done; \
                         hostname \"$h\"; exec \"$0\" -f \"$SSHD_CONFIG\" -E \"$SSHD_LOG\"",
                    )
                    .arg(sshd)
                    .arg(TEST_NODE)
                    .args(dirs.iter())
                    .env("SSHD_CONFIG", d.join("sshd_config"))
                    .env("SSHD_LOG", d.join("sshd.log"));
                c
            }
        };
        let st = command.status().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("sshd failed to start: {st}"));
        }
        let mut me = Sshd {
            dir,
            port,
            pid: None,
        };
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(10) {
            me.pid = std::fs::read_to_string(me.dir.path().join("sshd.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if me.pid.is_some() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(me);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err("sshd did not start listening within 10 s".into())
    }

    /// The value for `OMPI_MCA_plm_rsh_agent`.
    pub fn agent(&self) -> String {
        format!("ssh -F {}", self.dir.path().join("ssh_config").display())
    }
}
