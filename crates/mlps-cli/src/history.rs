//! `history show|rerun` (mlpstorage.md §1.10): `<results-dir>/.mlps/history`, one line per
//! invocation `<sequence_id>,<YYYYMMDD_HHMMSS>,<argv joined by spaces>` (arguments that need it
//! are shell-quoted so that `rerun` gets them back exactly).

use std::fs::{self, OpenOptions};
use std::io::Write;

use chrono::{DateTime, Local};
use mlps_rules::results_tree::{ResultsTree, format_run_datetime};

use crate::exit::CliError;

/// argv joined by spaces, quoting what needs it.
pub fn join_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            shlex::try_quote(a)
                .map(|q| q.into_owned())
                .unwrap_or_else(|_| a.clone())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One history line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence id (1, 2, …).
    pub id: i64,
    /// `YYYYMMDD_HHMMSS`.
    pub datetime: String,
    /// The command line.
    pub command: String,
}

/// Reads every well-formed line.
pub fn read(tree: &ResultsTree) -> Vec<Entry> {
    let text = fs::read_to_string(tree.history_path()).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ',');
            let id = parts.next()?.trim().parse().ok()?;
            let datetime = parts.next()?.to_string();
            let command = parts.next()?.to_string();
            Some(Entry {
                id,
                datetime,
                command,
            })
        })
        .collect()
}

/// Appends an invocation; returns its id.
pub fn append(tree: &ResultsTree, argv: &[String], at: &DateTime<Local>) -> std::io::Result<i64> {
    fs::create_dir_all(tree.mlps_dir())?;
    let id = read(tree).last().map(|e| e.id).unwrap_or(0) + 1;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(tree.history_path())?;
    let mut argv = argv.to_vec();
    if let Some(first) = argv.first_mut() {
        *first = "mlpstorage".to_string();
    }
    writeln!(
        f,
        "{id},{},{}",
        format_run_datetime(at.naive_local()),
        join_argv(&argv)
    )?;
    Ok(id)
}

/// `history show`.
pub fn show(tree: &ResultsTree, limit: Option<i64>, id: Option<i64>) -> Result<(), CliError> {
    let entries = read(tree);
    let selected: Vec<&Entry> = match id {
        Some(id) => {
            let e = entries
                .iter()
                .find(|e| e.id == id)
                .ok_or_else(|| CliError::usage(format!("error: no history entry with id {id}")))?;
            vec![e]
        }
        None => {
            let skip = limit
                .map(|n| entries.len().saturating_sub(n.max(0) as usize))
                .unwrap_or(0);
            entries.iter().skip(skip).collect()
        }
    };
    if selected.is_empty() {
        println!("no history yet ({})", tree.history_path().display());
    }
    for e in selected {
        println!("{:>4}  {}  {}", e.id, e.datetime, e.command);
    }
    Ok(())
}

/// The argv (without argv[0]) of entry `id`, for `history rerun`.
pub fn rerun_args(tree: &ResultsTree, id: i64) -> Result<Vec<String>, CliError> {
    let e = read(tree)
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| CliError::usage(format!("error: no history entry with id {id}")))?;
    let mut argv = shlex::split(&e.command)
        .ok_or_else(|| CliError::general(format!("error: history entry {id} cannot be parsed")))?;
    if argv.is_empty() {
        return Err(CliError::general(format!(
            "error: history entry {id} is empty"
        )));
    }
    argv.remove(0);
    Ok(argv)
}
