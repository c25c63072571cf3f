//! [`Launcher`]: the `mpirun` argument vector of mlpstorage.md §2.2, built as a vector of
//! arguments (never a shell string), plus rank discovery from the launcher's environment.
//!
//! Shape (OpenMPI `mpirun`/`mpiexec`):
//! ```text
//! <mpi_bin> -n <N> -host <h1:s1,h2:s2,...> --bind-to none --map-by <node|socket>
//!   [--oversubscribe] [--allow-run-as-root] [<btl flags>] [<mpi-params...>] [-x VAR ...]
//!   <program> <args...>
//! ```
//! Decisions where the reference is silent or breaks:
//! - a host list that mixes `host:slots` and bare hosts is an error (the reference crashes);
//! - `--mpi-btl vader|tcp` becomes `--mca btl vader,self` / `--mca btl tcp,self`, single host only;
//! - each `--mpi-params` string is split like a POSIX shell would (quotes, backslashes), never run
//!   through a shell.

use std::ffi::OsString;
use std::process::Command;

/// Why a launch plan could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    #[error("--hosts is empty after parsing; give at least one host, e.g. --hosts 127.0.0.1")]
    NoHosts,
    #[error(
        "--hosts entry '{0}' is not HOST or HOST:SLOTS with SLOTS a positive integer (e.g. node1:8)"
    )]
    BadHost(String),
    #[error(
        "--hosts mixes HOST:SLOTS and bare HOST entries ({0}); give slots for every host or for none"
    )]
    MixedSlots(String),
    #[error("Configured slots ({slots}) are not sufficient to run {processes} processes")]
    InsufficientSlots { slots: u64, processes: u64 },
    #[error("the number of processes must be at least 1 (got {0})")]
    NoProcesses(u64),
    #[error("--mpi-params '{0}' has an unterminated quote")]
    UnterminatedQuote(String),
}

/// One `--hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub slots: Option<u64>,
}

impl std::fmt::Display for HostSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.slots {
            Some(s) => write!(f, "{}:{}", self.name, s),
            None => f.write_str(&self.name),
        }
    }
}

/// Parses `--hosts` values: every item is split on commas and whitespace (`h1 h2`, `h1,h2`,
/// `'h1 h2'`), each piece is `HOST` or `HOST:SLOTS`.
pub fn parse_hosts<S: AsRef<str>>(items: &[S]) -> Result<Vec<HostSpec>, LaunchError> {
    let mut hosts = Vec::new();
    for item in items {
        for piece in item
            .as_ref()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let spec = match piece.split_once(':') {
                None => HostSpec {
                    name: piece.to_string(),
                    slots: None,
                },
                Some((name, slots)) => match slots.parse::<u64>() {
                    Ok(s) if s > 0 && !name.is_empty() => HostSpec {
                        name: name.to_string(),
                        slots: Some(s),
                    },
                    _ => return Err(LaunchError::BadHost(piece.to_string())),
                },
            };
            hosts.push(spec);
        }
    }
    if hosts.is_empty() {
        return Err(LaunchError::NoHosts);
    }
    Ok(hosts)
}

/// Host list with slots for `processes` ranks: given slots are checked (total ≥ processes);
/// otherwise `base = N / H` each and the first `N % H` hosts get one more.
pub fn assign_slots(hosts: &[HostSpec], processes: u64) -> Result<Vec<HostSpec>, LaunchError> {
    if hosts.is_empty() {
        return Err(LaunchError::NoHosts);
    }
    if processes == 0 {
        return Err(LaunchError::NoProcesses(processes));
    }
    let with = hosts.iter().filter(|h| h.slots.is_some()).count();
    if with == hosts.len() {
        let slots: u64 = hosts.iter().filter_map(|h| h.slots).sum();
        if slots < processes {
            return Err(LaunchError::InsufficientSlots { slots, processes });
        }
        return Ok(hosts.to_vec());
    }
    if with > 0 {
        let list: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        return Err(LaunchError::MixedSlots(list.join(",")));
    }
    let h = hosts.len() as u64;
    let (base, extra) = (processes / h, processes % h);
    Ok(hosts
        .iter()
        .enumerate()
        .map(|(i, host)| HostSpec {
            name: host.name.clone(),
            slots: Some(base + u64::from((i as u64) < extra)),
        })
        .collect())
}

/// `--mpi-btl`: byte transport for single-host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MpiBtl {
    /// Let MPI choose (no flag).
    #[default]
    Auto,
    /// Shared memory: `--mca btl vader,self`.
    Vader,
    /// Loopback TCP: `--mca btl tcp,self`.
    Tcp,
}

/// Everything that decides the `mpirun` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    /// The launcher binary (`mpirun`, `mpiexec` or a path; see [`resolve_mpi_bin`]).
    pub mpi_bin: String,
    pub hosts: Vec<HostSpec>,
    /// Total ranks (`--num-accelerators` for training runs, `--num-processes` otherwise).
    pub processes: u64,
    pub oversubscribe: bool,
    pub allow_run_as_root: bool,
    pub btl: MpiBtl,
    /// Raw `--mpi-params` strings, each split like a shell would.
    pub mpi_params: Vec<String>,
    /// Environment variables forwarded to every rank with `-x NAME`.
    pub export_env: Vec<String>,
}

/// A program and its argument vector, ready to run or print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    pub program: String,
    pub args: Vec<String>,
}

impl LaunchPlan {
    /// The plan as a `Command` (no shell involved).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        c
    }

    /// Program followed by arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// One line for logs and `--dry-run`, each word quoted for a POSIX shell where needed, so
    /// that pasting it into a shell runs the same vector.
    pub fn display(&self) -> String {
        self.argv()
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Launcher {
    /// A launcher for `processes` ranks on `hosts` with the reference defaults (`mpirun`, no
    /// optional flags).
    pub fn new(hosts: Vec<HostSpec>, processes: u64) -> Launcher {
        Launcher {
            mpi_bin: "mpirun".to_string(),
            hosts,
            processes,
            oversubscribe: false,
            allow_run_as_root: false,
            btl: MpiBtl::Auto,
            mpi_params: Vec::new(),
            export_env: Vec::new(),
        }
    }

    /// The hosts with their slots, as passed to `-host`.
    pub fn slotted_hosts(&self) -> Result<Vec<HostSpec>, LaunchError> {
        assign_slots(&self.hosts, self.processes)
    }

    /// The launcher arguments (everything after the binary, before the rank program).
    pub fn prefix_args(&self) -> Result<Vec<String>, LaunchError> {
        let hosts = self.slotted_hosts()?;
        let mut unique: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        unique.sort_unstable();
        unique.dedup();
        let host_list: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        let mut args: Vec<String> = vec![
            "-n".into(),
            self.processes.to_string(),
            "-host".into(),
            host_list.join(","),
            "--bind-to".into(),
            "none".into(),
            "--map-by".into(),
            if unique.len() > 1 { "node" } else { "socket" }.into(),
        ];
        if self.oversubscribe {
            args.push("--oversubscribe".into());
        }
        if self.allow_run_as_root {
            args.push("--allow-run-as-root".into());
        }
        if unique.len() == 1 {
            match self.btl {
                MpiBtl::Auto => {}
                MpiBtl::Vader => args.extend(["--mca".into(), "btl".into(), "vader,self".into()]),
                MpiBtl::Tcp => args.extend(["--mca".into(), "btl".into(), "tcp,self".into()]),
            }
        }
        for p in &self.mpi_params {
            args.extend(split_shell_words(p)?);
        }
        for var in &self.export_env {
            args.extend(["-x".into(), var.clone()]);
        }
        Ok(args)
    }

    /// The full plan: launcher, its arguments, then `program` with `program_args`.
    pub fn plan<S: AsRef<str>>(
        &self,
        program: &str,
        program_args: &[S],
    ) -> Result<LaunchPlan, LaunchError> {
        let mut args = self.prefix_args()?;
        args.push(program.to_string());
        args.extend(program_args.iter().map(|a| a.as_ref().to_string()));
        Ok(LaunchPlan {
            program: self.mpi_bin.clone(),
            args,
        })
    }
}

/// The launcher binary for `--mpi-bin` (`mpirun` or `mpiexec`), overridden by the reference's
/// environment variables `MPI_RUN_BIN` / `MPI_EXEC_BIN` when set and non-empty.
pub fn resolve_mpi_bin(mpi_bin: &str, env: impl Fn(&str) -> Option<OsString>) -> String {
    let var = match mpi_bin {
        "mpirun" => "MPI_RUN_BIN",
        "mpiexec" => "MPI_EXEC_BIN",
        _ => return mpi_bin.to_string(),
    };
    env(var)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| mpi_bin.to_string())
}

/// Splits a string into words as a POSIX shell would (single quotes literal, double quotes with
/// `\"` `\\` `\$` `` \` `` escapes, backslash outside quotes), without expanding anything.
pub fn split_shell_words(s: &str) -> Result<Vec<String>, LaunchError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(LaunchError::UnterminatedQuote(s.to_string())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(LaunchError::UnterminatedQuote(s.to_string())),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(LaunchError::UnterminatedQuote(s.to_string())),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Quotes one word for a POSIX shell; words of only safe characters stay as they are.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// This process's place in a job started by an MPI launcher, read from the launcher's
/// environment (OpenMPI `OMPI_COMM_WORLD_*`, PMIx, MPICH/Hydra `PMI_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankEnv {
    pub rank: usize,
    pub size: usize,
    /// Rank among the ranks on this host, when the launcher says.
    pub local_rank: Option<usize>,
}

impl RankEnv {
    /// Reads the current process environment; `None` when not started by a known launcher.
    pub fn from_env() -> Option<RankEnv> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same, from any lookup (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<RankEnv> {
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<usize>().ok());
        let pairs = [
            (
                "OMPI_COMM_WORLD_RANK",
                "OMPI_COMM_WORLD_SIZE",
                "OMPI_COMM_WORLD_LOCAL_RANK",
            ),
            ("PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK"),
            ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
        ];
        pairs.iter().find_map(|(r, s, l)| {
            let (rank, size) = (num(r)?, num(s)?);
            (rank < size).then_some(RankEnv {
                rank,
                size,
                local_rank: num(l),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(s: &str) -> Vec<HostSpec> {
        parse_hosts(&[s]).unwrap_or_default()
    }

    #[test]
    fn reference_example_200_ranks_over_6_hosts() {
        let h = assign_slots(&hosts("a b c d e f"), 200).unwrap_or_default();
        let slots: Vec<u64> = h.iter().filter_map(|h| h.slots).collect();
        assert_eq!(slots, vec![34, 34, 33, 33, 33, 33]);
    }

    #[test]
    fn three_host_dry_run_vector() {
        let mut l = Launcher::new(hosts("node1,node2 node3"), 8);
        l.oversubscribe = true;
        l.allow_run_as_root = true;
        l.mpi_params = vec!["-x FOO --mca btl_tcp_if_include 'eth0 eth1'".into()];
        l.export_env = vec!["DLIO_DROP_CACHES_TIMEOUT".into()];
        let plan = l.plan("mlpstorage", &["training", "run"]);
        let want = [
            "mpirun",
            "-n",
            "8",
            "-host",
            "node1:3,node2:3,node3:2",
            "--bind-to",
            "none",
            "--map-by",
            "node",
            "--oversubscribe",
            "--allow-run-as-root",
            "-x",
            "FOO",
            "--mca",
            "btl_tcp_if_include",
            "eth0 eth1",
            "-x",
            "DLIO_DROP_CACHES_TIMEOUT",
            "mlpstorage",
            "training",
            "run",
        ];
        assert_eq!(
            plan.as_ref().map(LaunchPlan::argv).ok(),
            Some(want.map(String::from).to_vec())
        );
        assert_eq!(
            plan.map(|p| p.display()).ok().as_deref(),
            Some(
                "mpirun -n 8 -host node1:3,node2:3,node3:2 --bind-to none --map-by node \
                 --oversubscribe --allow-run-as-root -x FOO --mca btl_tcp_if_include 'eth0 eth1' \
                 -x DLIO_DROP_CACHES_TIMEOUT mlpstorage training run"
            )
        );
    }

    #[test]
    fn single_host_maps_by_socket_and_takes_btl() {
        let mut l = Launcher::new(hosts("127.0.0.1"), 2);
        l.btl = MpiBtl::Tcp;
        let args = l.prefix_args().unwrap_or_default();
        assert_eq!(
            args.join(" "),
            "-n 2 -host 127.0.0.1:2 --bind-to none --map-by socket --mca btl tcp,self"
        );
        // The same host twice is still one host.
        let l = Launcher::new(hosts("h:1,h:1"), 2);
        assert!(
            l.prefix_args()
                .unwrap_or_default()
                .contains(&"socket".to_string())
        );
    }

    #[test]
    fn given_slots_are_checked_not_rewritten() {
        let l = Launcher::new(hosts("a:2,b:4"), 5);
        assert_eq!(l.prefix_args().unwrap_or_default()[3], "a:2,b:4");
        let l = Launcher::new(hosts("a:2,b:2"), 5);
        let e = l.prefix_args().err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("Configured slots (4) are not sufficient to run 5 processes")
        );
        assert!(matches!(
            Launcher::new(hosts("a:2,b"), 2).prefix_args(),
            Err(LaunchError::MixedSlots(_))
        ));
    }

    #[test]
    fn bad_host_lists_are_named() {
        assert_eq!(parse_hosts(&[" , "]), Err(LaunchError::NoHosts));
        assert_eq!(
            parse_hosts(&["a:x"]),
            Err(LaunchError::BadHost("a:x".into()))
        );
        assert_eq!(
            parse_hosts(&["a:0"]),
            Err(LaunchError::BadHost("a:0".into()))
        );
        assert_eq!(
            assign_slots(&hosts("a"), 0),
            Err(LaunchError::NoProcesses(0))
        );
    }

    #[test]
    fn shell_words_and_quoting_round_trip() {
        let w = split_shell_words(r#"-x "A=1 2" 'b c' d\ e "q\"x""#).unwrap_or_default();
        assert_eq!(w, vec!["-x", "A=1 2", "b c", "d e", "q\"x"]);
        assert!(split_shell_words("'open").is_err());
        for word in ["plain", "a b", "it's", ""] {
            let q = shell_quote(word);
            assert_eq!(
                split_shell_words(&q).unwrap_or_default(),
                vec![word.to_string()]
            );
        }
    }

    #[test]
    fn mpi_bin_env_override() {
        let env = |k: &str| (k == "MPI_RUN_BIN").then(|| OsString::from("/opt/ompi/bin/mpirun"));
        assert_eq!(resolve_mpi_bin("mpirun", env), "/opt/ompi/bin/mpirun");
        assert_eq!(resolve_mpi_bin("mpiexec", env), "mpiexec");
    }

    #[test]
    fn rank_env_from_openmpi_and_mpich() {
        let ompi = |k: &str| match k {
            "OMPI_COMM_WORLD_RANK" => Some("1".to_string()),
            "OMPI_COMM_WORLD_SIZE" => Some("4".to_string()),
            "OMPI_COMM_WORLD_LOCAL_RANK" => Some("1".to_string()),
            _ => None,
        };
        assert_eq!(
            RankEnv::from_lookup(ompi),
            Some(RankEnv {
                rank: 1,
                size: 4,
                local_rank: Some(1)
            })
        );
        let pmi = |k: &str| match k {
            "PMI_RANK" => Some("0".to_string()),
            "PMI_SIZE" => Some("2".to_string()),
            _ => None,
        };
        assert_eq!(RankEnv::from_lookup(pmi).map(|r| r.size), Some(2));
        assert_eq!(RankEnv::from_lookup(|_| None), None);
    }
}
