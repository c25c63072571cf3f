//! Environment preflight of mlpstorage.md §3.7 that belongs to the cluster: the MPI launcher is
//! installed, which `--hosts` entries need SSH, and [`check_ssh_reachable`]: every remote host
//! answers the OpenSSH client non-interactively, as `mpirun` will need it to start the ranks (a
//! host that does not would otherwise surface as a long `mpirun` hang). Also [`connect_world`],
//! which picks the communicator for this process.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::comm::{CommError, Communicator, SingleComm};
use crate::launch::{HostSpec, RankEnv};

/// A preflight check that failed, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "MPI launcher '{0}' not found on PATH; install Open MPI (Debian/Ubuntu: apt-get install -y openmpi-bin libopenmpi-dev), set MPI_RUN_BIN / MPI_EXEC_BIN, or pass --mpi-bin"
    )]
    NoLauncher(String),
    #[error(
        "the OpenSSH client `ssh` is not on PATH; mpirun needs it to start ranks on {0}; install it (Debian/Ubuntu: apt-get install -y openssh-client) or pass --skip-ssh-check if your launcher does not use SSH"
    )]
    NoSshClient(String),
    #[error(
        "cannot reach host {host} over SSH (mpirun starts remote ranks this way): {reason}\n  fix: {fix}"
    )]
    SshUnreachable {
        host: String,
        reason: String,
        fix: String,
    },
}

/// Finds an executable: a path containing `/` is taken as is, a bare name is searched on `PATH`.
pub fn find_executable(name: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_exec(p))
}

/// The MPI launcher (`mpirun`, `mpiexec` or a path) must exist when `exec-type` is `mpi`.
pub fn check_mpi_launcher(mpi_bin: &str) -> Result<PathBuf, PreflightError> {
    find_executable(mpi_bin).ok_or_else(|| PreflightError::NoLauncher(mpi_bin.to_string()))
}

/// Whether a `--hosts` name is this machine (`localhost`, loopback addresses, or our host name);
/// such hosts need no SSH check, as in the reference.
pub fn is_local_host(name: &str) -> bool {
    name == "localhost"
        || name == "::1"
        || name.starts_with("127.")
        || name == crate::host::local_hostname()
}

/// The distinct hosts of `--hosts` that are not this machine, in order.
pub fn remote_hosts(hosts: &[HostSpec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in hosts {
        if !is_local_host(&h.name) && !out.contains(&h.name) {
            out.push(h.name.clone());
        }
    }
    out
}

/// The remote shell Open MPI's `mpirun` starts remote daemons with: the first alternative of
/// `OMPI_MCA_plm_rsh_agent` (default `ssh : rsh`), split into words, e.g. `["ssh", "-F", "cfg"]`.
/// `None` when that agent is not OpenSSH (then the SSH preflight does not apply).
pub fn rsh_agent(env: impl Fn(&str) -> Option<String>) -> Option<Vec<String>> {
    let value = env("OMPI_MCA_plm_rsh_agent")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "ssh : rsh".into());
    let first = value.split(':').next().unwrap_or("ssh");
    let words = crate::launch::split_shell_words(first).ok()?;
    let program = words.first()?;
    (Path::new(program).file_name()? == "ssh").then_some(words)
}

/// Checks that every host answers `<agent> -o BatchMode=yes -o ConnectTimeout=<connect_timeout>
/// -o StrictHostKeyChecking=accept-new <host> echo ok` (the reference's check; a host key seen for
/// the first time is recorded, a changed one is refused). `agent` is the OpenSSH client with any
/// leading options, as [`rsh_agent`] gives it (`["ssh"]` by default). Hosts are checked in
/// parallel; each check is killed after `connect_timeout + 10 s`. Returns one error per host
/// that failed, each naming the host and the fix.
pub fn check_ssh_reachable(
    hosts: &[String],
    connect_timeout: Duration,
    agent: &[String],
) -> Vec<PreflightError> {
    if hosts.is_empty() {
        return Vec::new();
    }
    let Some((program, agent_args)) = agent.split_first() else {
        return vec![PreflightError::NoSshClient(hosts.join(", "))];
    };
    if find_executable(program).is_none() {
        return vec![PreflightError::NoSshClient(hosts.join(", "))];
    }
    let secs = connect_timeout.as_secs().max(1);
    let limit = Duration::from_secs(secs + 10);
    std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                (
                    h,
                    s.spawn(move || ssh_echo(program, agent_args, h, secs, limit)),
                )
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(h, j)| {
                let outcome = j
                    .join()
                    .unwrap_or_else(|_| Err("the check thread panicked".into()));
                outcome.err().map(|stderr| ssh_failure(h, &stderr))
            })
            .collect()
    })
}

/// Runs the check against one host; `Err` carries ssh's error output.
fn ssh_echo(
    program: &str,
    agent_args: &[String],
    host: &str,
    connect_secs: u64,
    limit: Duration,
) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(agent_args)
        .args(["-o", "BatchMode=yes", "-o"])
        .arg(format!("ConnectTimeout={connect_secs}"))
        .args([
            "-o",
            "StrictHostKeyChecking=accept-new",
            "--",
            host,
            "echo",
            "ok",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {} s (connection timed out)",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for ssh: {e}")),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if status.success() && out.trim() == "ok" {
        Ok(())
    } else if err.trim().is_empty() {
        Err(format!(
            "ssh exited with {status} and printed {:?}",
            out.trim()
        ))
    } else {
        Err(err.trim().to_string())
    }
}

/// Turns ssh's error output into a reason and the fix for it.
fn ssh_failure(host: &str, stderr: &str) -> PreflightError {
    let has = |s: &str| stderr.contains(s);
    let fix = if has("Could not resolve hostname") || has("Name or service not known") {
        format!("check the name {host} in --hosts (DNS or /etc/hosts on this machine)")
    } else if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key verification failed") {
        format!(
            "the host key of {host} differs from the one in ~/.ssh/known_hosts; if the host was reinstalled, remove the old key (ssh-keygen -R {host}) and verify the new fingerprint"
        )
    } else if has("Permission denied") {
        format!(
            "set up passwordless key authentication for this user (e.g. ssh-copy-id {host}); mpirun cannot answer password prompts"
        )
    } else if has("Connection refused") {
        format!(
            "no SSH server answers on {host}; start sshd there or fix the port in ~/.ssh/config"
        )
    } else if has("timed out") || has("No route to host") || has("Network is unreachable") {
        format!(
            "{host} is not reachable from here; check the network, firewall, or the name in --hosts"
        )
    } else {
        format!("make `ssh {host} echo ok` work without a prompt, or pass --skip-ssh-check")
    };
    PreflightError::SshUnreachable {
        host: host.to_string(),
        reason: stderr.lines().last().unwrap_or(stderr).trim().to_string(),
        fix,
    }
}

/// The communicator of this process: MPI when started by an MPI launcher (needs feature `mpi`),
/// otherwise a single rank. Threads-as-ranks jobs create [`crate::LocalComm`] themselves.
pub fn connect_world() -> Result<Box<dyn Communicator>, CommError> {
    match RankEnv::from_env() {
        None => Ok(Box::new(SingleComm)),
        #[cfg(feature = "mpi")]
        Some(_) => Ok(Box::new(crate::mpi_comm::MpiComm::init()?)),
        #[cfg(not(feature = "mpi"))]
        Some(env) => Err(CommError::Transport(format!(
            "started by an MPI launcher as rank {} of {}, but this build has no MPI support; \
             rebuild with `--features mpi` (needs openmpi-bin libopenmpi-dev libclang-dev)",
            env.rank, env.size
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::parse_hosts;

    #[test]
    fn launcher_lookup_names_the_fix() {
        assert!(find_executable("sh").is_some());
        let e = check_mpi_launcher("mlps-no-such-launcher").err();
        assert!(e.is_some_and(|e| e.to_string().contains("apt-get install -y openmpi-bin")));
    }

    #[test]
    fn local_hosts_need_no_ssh() {
        let me = crate::host::local_hostname();
        let hosts = parse_hosts(&[format!("127.0.0.1:2,localhost,{me},node1:4,node1:4,node2")])
            .unwrap_or_default();
        assert_eq!(remote_hosts(&hosts), vec!["node1", "node2"]);
    }

    #[test]
    fn ssh_check_names_an_unresolvable_host_and_the_fix_quickly() {
        if find_executable("ssh").is_none() {
            eprintln!("SKIP: no ssh client (apt-get install -y openssh-client)");
            return;
        }
        let t0 = Instant::now();
        let errs = check_ssh_reachable(
            &["mlps-no-such-host.invalid".to_string()],
            Duration::from_secs(5),
            &["ssh".to_string()],
        );
        assert!(t0.elapsed() < Duration::from_secs(15));
        assert_eq!(errs.len(), 1);
        let text = errs[0].to_string();
        assert!(
            text.starts_with("cannot reach host mlps-no-such-host.invalid over SSH")
                && text.contains("fix: check the name mlps-no-such-host.invalid in --hosts"),
            "{text}"
        );
    }

    #[test]
    fn rsh_agent_follows_open_mpi() {
        fn env(v: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
            move |_| v.map(str::to_string)
        }
        assert_eq!(rsh_agent(env(None)), Some(vec!["ssh".to_string()]));
        assert_eq!(
            rsh_agent(env(Some("/usr/bin/ssh -F '/a b/cfg' : rsh"))),
            Some(vec!["/usr/bin/ssh".into(), "-F".into(), "/a b/cfg".into()])
        );
        assert_eq!(rsh_agent(env(Some("rsh"))), None);
    }

    #[test]
    fn ssh_failures_map_to_fixes() {
        let e = ssh_failure("n1", "n1: Permission denied (publickey).").to_string();
        assert!(e.contains("ssh-copy-id n1"), "{e}");
        let e = ssh_failure("n1", "Host key verification failed.").to_string();
        assert!(e.contains("ssh-keygen -R n1"), "{e}");
        let e =
            ssh_failure("n1", "ssh: connect to host n1 port 22: Connection refused").to_string();
        assert!(e.contains("start sshd"), "{e}");
    }

    #[test]
    fn without_a_launcher_this_process_is_one_rank() {
        if RankEnv::from_env().is_none() {
            let w = connect_world();
            assert!(matches!(w, Ok(c) if c.size() == 1 && c.rank() == 0));
        }
    }
}
