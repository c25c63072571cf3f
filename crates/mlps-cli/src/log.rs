//! Console + per-leaf logging. Console lines go to stderr with a level tag at or above
//! `--stream-log-level` (`--debug` lowers it to DEBUG); every line, at DEBUG, is also kept for the
//! leaf's `mlpstorage.log`, and WARNING/ERROR lines for `mlpstorage.errors.log`. Lines logged
//! before the leaf exists are buffered and flushed into the files when [`Logger::attach`] is
//! called. Line format in the files: `YYYY-MM-DD HH:MM:SS|LEVEL: message`.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Log levels (ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Details.
    Debug,
    /// Normal progress.
    Info,
    /// A status line.
    Status,
    /// A result line.
    Result,
    /// Something to look at.
    Warning,
    /// A failure.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Status => "STATUS",
            Level::Result => "RESULT",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Level::Warning => "⚠ WARNING",
            Level::Error => "✖ ERROR",
            other => other.name(),
        }
    }
    fn color(self) -> &'static str {
        match self {
            Level::Debug => "\x1b[2m",
            Level::Info | Level::Status => "\x1b[36m",
            Level::Result => "\x1b[32m",
            Level::Warning => "\x1b[33m",
            Level::Error => "\x1b[31m",
        }
    }
    /// Parses `--stream-log-level`.
    pub fn parse(s: &str) -> Level {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Level::Debug,
            "WARNING" | "WARN" => Level::Warning,
            "ERROR" | "CRITICAL" => Level::Error,
            _ => Level::Info,
        }
    }
}

struct Files {
    full: File,
    errors: File,
    dir: PathBuf,
}

struct Inner {
    pending: Vec<(Level, String)>,
    files: Option<Files>,
    warnings: Vec<String>,
    errors: Vec<String>,
}

/// The invocation's logger (shared by reference with engines through `RunContext`).
pub struct Logger {
    threshold: Level,
    color: bool,
    inner: Mutex<Inner>,
}

impl Logger {
    /// `stream_level`: console threshold; `color`: `auto|always|never`.
    pub fn new(stream_level: Level, color: &str) -> Logger {
        let color = match color {
            "always" => true,
            "never" => false,
            _ => {
                std::env::var_os("NO_COLOR").is_none()
                    && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
                    && std::io::stderr().is_terminal()
            }
        };
        Logger {
            threshold: stream_level,
            color,
            inner: Mutex::new(Inner {
                pending: Vec::new(),
                files: None,
                warnings: Vec::new(),
                errors: Vec::new(),
            }),
        }
    }

    fn stamp(level: Level, msg: &str) -> String {
        format!(
            "{}|{}: {msg}\n",
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S"),
            level.name()
        )
    }

    /// Logs one message.
    pub fn log(&self, level: Level, msg: &str) {
        if level >= self.threshold {
            let tag = if self.color {
                format!("{}{}\x1b[0m", level.color(), level.tag())
            } else {
                level.tag().to_string()
            };
            eprintln!("{tag}: {msg}");
        }
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        match level {
            Level::Warning => g.warnings.push(msg.to_string()),
            Level::Error => g.errors.push(msg.to_string()),
            _ => {}
        }
        let line = Self::stamp(level, msg);
        match g.files.as_mut() {
            Some(f) => {
                let _ = f.full.write_all(line.as_bytes());
                if level >= Level::Warning {
                    let _ = f.errors.write_all(line.as_bytes());
                }
            }
            None => g.pending.push((level, line)),
        }
    }

    /// DEBUG
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg)
    }
    /// INFO
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg)
    }
    /// STATUS
    pub fn status(&self, msg: &str) {
        self.log(Level::Status, msg)
    }
    /// WARNING
    pub fn warning(&self, msg: &str) {
        self.log(Level::Warning, msg)
    }
    /// ERROR
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg)
    }

    /// Opens `mlpstorage.log` and `mlpstorage.errors.log` in `leaf` and writes the buffered lines.
    pub fn attach(&self, leaf: &Path) -> std::io::Result<()> {
        let open = |name: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(leaf.join(name))
        };
        let mut files = Files {
            full: open("mlpstorage.log")?,
            errors: open("mlpstorage.errors.log")?,
            dir: leaf.to_path_buf(),
        };
        let Ok(mut g) = self.inner.lock() else {
            return Ok(());
        };
        for (level, line) in g.pending.drain(..) {
            files.full.write_all(line.as_bytes())?;
            if level >= Level::Warning {
                files.errors.write_all(line.as_bytes())?;
            }
        }
        g.files = Some(files);
        Ok(())
    }

    /// End-of-run recap (§2.1 step 12) when anything was warned or failed.
    pub fn recap(&self) {
        let Ok(g) = self.inner.lock() else {
            return;
        };
        if g.warnings.is_empty() && g.errors.is_empty() {
            return;
        }
        eprintln!(
            "── mlpstorage finished with {} error(s), {} warning(s) ──",
            g.errors.len(),
            g.warnings.len()
        );
        for e in &g.errors {
            eprintln!("  ✖ {}", e.lines().next().unwrap_or(""));
        }
        for w in &g.warnings {
            eprintln!("  ⚠ {}", w.lines().next().unwrap_or(""));
        }
        if let Some(f) = &g.files {
            eprintln!("  {}", f.dir.join("mlpstorage.errors.log").display());
            eprintln!("  {}", f.dir.join("mlpstorage.log").display());
        }
    }
}
