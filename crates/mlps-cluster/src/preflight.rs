//! Environment preflight of mlpstorage.md §3.7 that belongs to the cluster: the MPI launcher is
//! installed, and which `--hosts` entries need SSH (the reachability check itself is
//! `SshCollector::check_reachable`, feature `ssh`). Also [`connect_world`], which picks the
//! communicator for this process.

use std::path::{Path, PathBuf};

use crate::comm::{CommError, Communicator, SingleComm};
use crate::launch::{HostSpec, RankEnv};

/// A preflight check that failed, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "MPI launcher '{0}' not found on PATH; install Open MPI (Debian/Ubuntu: apt-get install -y openmpi-bin libopenmpi-dev), set MPI_RUN_BIN / MPI_EXEC_BIN, or pass --mpi-bin"
    )]
    NoLauncher(String),
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
    fn without_a_launcher_this_process_is_one_rank() {
        if RankEnv::from_env().is_none() {
            let w = connect_world();
            assert!(matches!(w, Ok(c) if c.size() == 1 && c.rank() == 0));
        }
    }
}
