//! [`SshCollector`] (feature `ssh`): host snapshots over SSH with key authentication and host keys
//! checked against `known_hosts` (mlpstorage.md §6.3).
//!
//! Host key policy: a host whose key is not in `known_hosts`, or whose key differs from the
//! recorded one, is refused unless the caller opts in ([`HostKeyPolicy::AcceptNew`] records an
//! unknown key and still refuses a changed one, as `ssh -o StrictHostKeyChecking=accept-new`;
//! [`HostKeyPolicy::AcceptAny`] accepts both and is for throw-away test machines only).

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2::{CheckResult, KnownHostFileKind, Session};

use crate::cluster::{ClusterInfo, CollectionMethod};
use crate::host::HostInfo;
use crate::remote;

/// What to do with a host key that `known_hosts` does not vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Unknown and changed keys are errors.
    #[default]
    Strict,
    /// Unknown keys are accepted and appended to `known_hosts`; changed keys are errors.
    AcceptNew,
    /// Any key is accepted (insecure).
    AcceptAny,
}

/// Why an SSH operation failed; every variant names the host.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("ssh {host}:{port}: cannot connect: {message}")]
    Connect {
        host: String,
        port: u16,
        message: String,
    },
    #[error(
        "ssh {host}:{port}: host key is not in {known_hosts}; add it (e.g. ssh-keyscan -p {port} {host} >> {known_hosts}) after checking its fingerprint, or opt in to accepting new keys"
    )]
    UnknownHostKey {
        host: String,
        port: u16,
        known_hosts: String,
    },
    #[error(
        "ssh {host}:{port}: HOST KEY CHANGED: the key offered does not match the one recorded in {known_hosts}; this may be an attack or a reinstalled host; remove the old entry only if you know why it changed"
    )]
    HostKeyChanged {
        host: String,
        port: u16,
        known_hosts: String,
    },
    #[error("ssh {host}:{port}: key authentication as {user} with {key} failed: {message}")]
    Auth {
        host: String,
        port: u16,
        user: String,
        key: String,
        message: String,
    },
    #[error("ssh {host}:{port}: {message}")]
    Session {
        host: String,
        port: u16,
        message: String,
    },
    #[error("ssh {host}: remote command exited with status {status}: {stderr}")]
    Command {
        host: String,
        status: i32,
        stderr: String,
    },
    #[error("ssh {host}: {message}")]
    Parse { host: String, message: String },
}

/// Output of one remote command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Connects to hosts with one user, one private key and one `known_hosts` file.
#[derive(Debug, Clone)]
pub struct SshCollector {
    pub user: String,
    pub port: u16,
    pub private_key: PathBuf,
    pub known_hosts: PathBuf,
    pub policy: HostKeyPolicy,
    /// Connect and per-operation timeout.
    pub timeout: Duration,
}

impl SshCollector {
    /// A collector with the caller's defaults: `$USER` (or root), port 22, `~/.ssh/id_ed25519`
    /// (else `id_ecdsa`, `id_rsa`), `~/.ssh/known_hosts`, strict host keys, 10 s timeout.
    pub fn with_defaults() -> SshCollector {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        let ssh = home.join(".ssh");
        let key = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| ssh.join(k))
            .find(|p| p.exists())
            .unwrap_or_else(|| ssh.join("id_ed25519"));
        SshCollector {
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            port: 22,
            private_key: key,
            known_hosts: ssh.join("known_hosts"),
            policy: HostKeyPolicy::Strict,
            timeout: Duration::from_secs(10),
        }
    }

    /// Opens an authenticated session after checking the host key.
    pub fn connect(&self, host: &str) -> Result<Session, SshError> {
        let port = self.port;
        let sess_err = |message: String| SshError::Session {
            host: host.to_string(),
            port,
            message,
        };
        let conn_err = |message: String| SshError::Connect {
            host: host.to_string(),
            port,
            message,
        };
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| conn_err(e.to_string()))?
            .collect();
        let mut last = String::from("no address");
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let tcp = tcp.ok_or_else(|| conn_err(last))?;
        let mut sess = Session::new().map_err(|e| sess_err(e.to_string()))?;
        sess.set_timeout(u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX));
        sess.set_tcp_stream(tcp);
        sess.handshake()
            .map_err(|e| sess_err(format!("handshake: {e}")))?;
        self.check_host_key(&sess, host)?;
        sess.userauth_pubkey_file(&self.user, None, &self.private_key, None)
            .map_err(|e| SshError::Auth {
                host: host.to_string(),
                port,
                user: self.user.clone(),
                key: self.private_key.display().to_string(),
                message: e.to_string(),
            })?;
        if !sess.authenticated() {
            return Err(sess_err(
                "not authenticated after key authentication".into(),
            ));
        }
        Ok(sess)
    }

    fn check_host_key(&self, sess: &Session, host: &str) -> Result<(), SshError> {
        let port = self.port;
        let kh_name = self.known_hosts.display().to_string();
        let sess_err = |message: String| SshError::Session {
            host: host.to_string(),
            port,
            message,
        };
        let (key, kind) = sess
            .host_key()
            .ok_or_else(|| sess_err("server offered no host key".into()))?;
        let mut kh = sess.known_hosts().map_err(|e| sess_err(e.to_string()))?;
        if self.known_hosts.exists() {
            kh.read_file(&self.known_hosts, KnownHostFileKind::OpenSSH)
                .map_err(|e| sess_err(format!("reading {kh_name}: {e}")))?;
        }
        match (kh.check_port(host, port, key), self.policy) {
            (CheckResult::Match, _) | (_, HostKeyPolicy::AcceptAny) => Ok(()),
            (CheckResult::Mismatch, _) => Err(SshError::HostKeyChanged {
                host: host.to_string(),
                port,
                known_hosts: kh_name,
            }),
            (CheckResult::NotFound, HostKeyPolicy::AcceptNew) => {
                let name = if port == 22 {
                    host.to_string()
                } else {
                    format!("[{host}]:{port}")
                };
                kh.add(&name, key, "added by mlpstorage", kind.into())
                    .map_err(|e| sess_err(format!("recording the host key: {e}")))?;
                if let Some(dir) = self.known_hosts.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                kh.write_file(&self.known_hosts, KnownHostFileKind::OpenSSH)
                    .map_err(|e| sess_err(format!("writing {kh_name}: {e}")))
            }
            (CheckResult::NotFound, HostKeyPolicy::Strict) => Err(SshError::UnknownHostKey {
                host: host.to_string(),
                port,
                known_hosts: kh_name,
            }),
            (CheckResult::Failure, _) => Err(sess_err(format!(
                "could not check the host key against {kh_name}"
            ))),
        }
    }

    /// Runs `command` (a string for the remote user's shell) and returns its output.
    pub fn run(&self, host: &str, command: &str) -> Result<RemoteOutput, SshError> {
        let sess = self.connect(host)?;
        let err = |message: String| SshError::Session {
            host: host.to_string(),
            port: self.port,
            message,
        };
        let mut ch = sess.channel_session().map_err(|e| err(e.to_string()))?;
        ch.exec(command).map_err(|e| err(format!("exec: {e}")))?;
        let mut stdout = String::new();
        ch.read_to_string(&mut stdout)
            .map_err(|e| err(format!("reading output: {e}")))?;
        let mut stderr = String::new();
        ch.stderr()
            .read_to_string(&mut stderr)
            .map_err(|e| err(format!("reading errors: {e}")))?;
        ch.wait_close().map_err(|e| err(e.to_string()))?;
        let status = ch.exit_status().map_err(|e| err(e.to_string()))?;
        Ok(RemoteOutput {
            status,
            stdout,
            stderr,
        })
    }

    /// Preflight: every host answers `echo ok` over SSH with the configured key and host-key
    /// policy. Returns the hosts that did not, with why.
    pub fn check_reachable(&self, hosts: &[String]) -> Vec<(String, SshError)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|h| (h, s.spawn(move || self.run(h, "echo ok"))))
                .collect();
            handles
                .into_iter()
                .filter_map(|(h, j)| {
                    let err = match j.join() {
                        Ok(Ok(o)) if o.status == 0 && o.stdout.trim() == "ok" => return None,
                        Ok(Ok(o)) => SshError::Command {
                            host: h.clone(),
                            status: o.status,
                            stderr: o.stderr.trim().to_string(),
                        },
                        Ok(Err(e)) => e,
                        Err(_) => SshError::Session {
                            host: h.clone(),
                            port: self.port,
                            message: "check thread panicked".into(),
                        },
                    };
                    Some((h.clone(), err))
                })
                .collect()
        })
    }

    /// One host's snapshot, with the filesystems of `paths` as that host sees them.
    pub fn collect(&self, host: &str, paths: &[&Path]) -> Result<HostInfo, SshError> {
        let strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let refs: Vec<&str> = strs.iter().map(String::as_str).collect();
        let script = remote::collect_script(&refs);
        let out = self.run(
            host,
            &format!("sh -c {}", crate::launch::shell_quote(&script)),
        )?;
        if out.status != 0 {
            return Err(SshError::Command {
                host: host.to_string(),
                status: out.status,
                stderr: out.stderr.trim().to_string(),
            });
        }
        let raw = remote::parse_output(&out.stdout).map_err(|message| SshError::Parse {
            host: host.to_string(),
            message,
        })?;
        Ok(HostInfo::from_raw(&raw))
    }

    /// Snapshots of every host (at most 10 at a time), as a cluster with method `ssh`, and the
    /// hosts that failed. Hosts are collected over SSH even when local, so that every host is
    /// seen the same way.
    pub fn collect_all(
        &self,
        hosts: &[String],
        paths: &[&Path],
    ) -> (ClusterInfo, Vec<(String, SshError)>) {
        let mut infos = Vec::new();
        let mut errors = Vec::new();
        for chunk in hosts.chunks(10) {
            let results: Vec<(String, Result<HostInfo, SshError>)> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|h| (h.clone(), s.spawn(move || self.collect(h, paths))))
                    .collect();
                handles
                    .into_iter()
                    .map(|(h, j)| {
                        let r = j.join().unwrap_or_else(|_| {
                            Err(SshError::Session {
                                host: h.clone(),
                                port: self.port,
                                message: "collector thread panicked".into(),
                            })
                        });
                        (h, r)
                    })
                    .collect()
            });
            for (h, r) in results {
                match r {
                    Ok(i) => infos.push(i),
                    Err(e) => errors.push((h, e)),
                }
            }
        }
        (
            ClusterInfo::from_hosts(infos, CollectionMethod::Ssh),
            errors,
        )
    }
}
