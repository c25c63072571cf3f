//! `mlpstorage`, the command line of the MLPerf Storage suite: parses the v3.0 grammar, layers
//! options, gates on the results-dir sentinel, writes the results tree and metadata, and
//! composes the library crates. It is the only crate that prints, reads the terminal or exits.
//!
//! Principal pieces:
//! - [`cli::command`]: the clap grammar (also used for completions / man pages);
//! - [`layering::Resolved`]: every option's effective value and source
//!   (flag > `--config-file` > `MLPSTORAGE_*` > per-user config > default);
//! - [`pipeline::benchmark`]: one benchmark invocation, metadata written in every case;
//! - [`run`]: **the seam for engines** — one function per (benchmark, command) in
//!   `run/training.rs`, `run/checkpointing.rs`, `run/vectordb.rs`, `run/kvcache.rs`, and one per
//!   utility in `run/tools.rs`. Wiring an engine means replacing one function body there; the
//!   function receives a [`run::RunContext`] (leaf dir, effective options, logger, quiet flag,
//!   communicator, interrupt flag) and its typed args, and returns a [`run::Outcome`].
//!
//! Decisions where the reference is ambiguous (kept deliberately):
//! - `--systemname` is required by every command that writes a leaf (the reference lets
//!   checkpointing/vectordb/kvcache `datasize` omit it, but the leaf path needs it);
//! - a leaf-name collision bumps the timestamp by one second (keeps `YYYYMMDD_HHMMSS`);
//! - `--dry-run` writes nothing at all (no leaf, no history line, no ledger entry);
//! - the first SIGINT/SIGTERM sets a flag (engines stop, metadata is written, exit 8); a second
//!   one ends the process at once (exit 130).

pub mod admin;
pub mod cli;
pub mod edition;
pub mod exit;
pub mod history;
pub mod layering;
pub mod log;
pub mod params;
pub mod pipeline;
pub mod run;
pub mod runs;

use std::path::PathBuf;

use clap::{ArgMatches, Command};
use mlps_rules::results_tree::{Family, Mode, ResultsTree};
use serde_json::Value;

use crate::exit::{CliError, ExitCode, classify};
use crate::layering::UserConfig;
use crate::log::{Level, Logger};
use crate::pipeline::Invocation;
use crate::run::tools::{self, ToolContext};

/// Entry point: runs one invocation and returns the process exit status.
pub fn main_entry(argv: Vec<String>) -> i32 {
    let inv = Invocation {
        argv,
        start: chrono::Local::now(),
    };
    let args: Vec<String> = inv.argv.iter().skip(1).cloned().collect();
    match run_args(&inv, &args) {
        Ok(code) => code.code(),
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("{}", e.message);
            }
            e.code.code()
        }
    }
}

fn run_args(inv: &Invocation, args: &[String]) -> Result<ExitCode, CliError> {
    let args = cli::rewrite_short_aliases(args);
    if args.iter().any(|a| a == "--help_all") {
        print!("{}", cli::help_all(&cli::command()));
        return Ok(ExitCode::Success);
    }
    let root = cli::command_for(&args);
    if let Some(next) = cli::context_next(&root, &args) {
        println!("{next}");
        return Ok(ExitCode::Success);
    }
    let mut full = vec!["mlpstorage".to_string()];
    full.extend(args.iter().cloned());
    let m = match root.clone().try_get_matches_from(&full) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            let code = if e.exit_code() == 0 {
                ExitCode::Success
            } else {
                ExitCode::InvalidArguments
            };
            return Err(CliError::new(code, ""));
        }
    };
    let Some((name, sub)) = m.subcommand() else {
        return Ok(ExitCode::Success);
    };
    let sub_cmd = root.find_subcommand(name).cloned().unwrap_or_default();
    if name == "config" {
        return config_cmd(&cli::command(), sub).map(|_| ExitCode::Success);
    }
    if name == "init" {
        let org = sub
            .get_one::<String>("orgname")
            .cloned()
            .unwrap_or_default();
        let dir = sub.get_one::<String>("results_dir").cloned();
        return admin::init(&org, dir.as_deref()).map(|_| ExitCode::Success);
    }
    if name == "version" {
        println!("mlpstorage {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::Success);
    }
    let user = UserConfig::load()?;
    if let Some(mode) = Mode::parse(name) {
        let (bench, bm) = sub.subcommand().unwrap_or(("", sub));
        let family =
            Family::parse(bench).ok_or_else(|| CliError::usage("error: missing benchmark"))?;
        let bench_cmd = sub_cmd.find_subcommand(bench).cloned().unwrap_or_default();
        let (model, cm, cmd_node) = if family == Family::Training {
            let (model, mm) = bm.subcommand().unwrap_or(("", bm));
            let model_cmd = bench_cmd
                .find_subcommand(model)
                .cloned()
                .unwrap_or_default();
            let (c, cm) = mm.subcommand().unwrap_or(("", mm));
            (
                Some(model.to_string()),
                (c.to_string(), cm.clone()),
                model_cmd.find_subcommand(c).cloned(),
            )
        } else {
            let (c, cm) = bm.subcommand().unwrap_or(("", bm));
            (
                None,
                (c.to_string(), cm.clone()),
                bench_cmd.find_subcommand(c).cloned(),
            )
        };
        let leaf_cmd = cmd_node.unwrap_or_default();
        return pipeline::benchmark(
            inv,
            mode,
            family,
            model.as_deref(),
            &cm.0,
            &leaf_cmd,
            &cm.1,
            &user,
        );
    }
    match name {
        "reports" => {
            let (_, rm) = sub.subcommand().unwrap_or(("", sub));
            let leaf = sub_cmd
                .find_subcommand("reportgen")
                .cloned()
                .unwrap_or_default();
            tool(inv, &leaf, rm, &user, Gate::Required, |ctx| {
                tools::reportgen(ctx)
            })
        }
        "validate" => {
            let dir = PathBuf::from(
                sub.get_one::<String>("submission_dir")
                    .cloned()
                    .unwrap_or_default(),
            );
            tool(inv, &sub_cmd, sub, &user, Gate::IfGiven, |ctx| {
                tools::validate(ctx, &dir)
            })
        }
        "submit" => tool(inv, &sub_cmd, sub, &user, Gate::Required, |ctx| {
            tools::submit(ctx)
        }),
        "rules-coverage" => tool(inv, &sub_cmd, sub, &user, Gate::None, |ctx| {
            tools::rules_coverage(ctx)
        }),
        "lockfile" => {
            let (which, lm) = sub.subcommand().unwrap_or(("", sub));
            let leaf = sub_cmd.find_subcommand(which).cloned().unwrap_or_default();
            if which == "generate" {
                tool(inv, &leaf, lm, &user, Gate::None, |ctx| {
                    tools::lockfile_generate(ctx)
                })
            } else {
                tool(inv, &leaf, lm, &user, Gate::None, |ctx| {
                    tools::lockfile_verify(ctx)
                })
            }
        }
        "history" => history_cmd(inv, sub, &user),
        "runs" => {
            let (which, rm) = sub.subcommand().unwrap_or(("", sub));
            let tree = ledger_tree(rm, &user)?;
            match which {
                "list" => runs::list(&tree, &filter(rm), rm.get_flag("json")),
                "show" => runs::show(&tree, rm.get_one::<i64>("id").copied().unwrap_or(0))?,
                "rm" => runs::rm(
                    &tree,
                    &runs::RmOptions {
                        ids: rm
                            .get_many::<i64>("ids")
                            .map(|v| v.copied().collect())
                            .unwrap_or_default(),
                        status: rm.get_one::<String>("status").cloned(),
                        older_than: rm.get_one::<String>("older_than").cloned(),
                        keep_last: rm.get_one::<i64>("keep_last").copied(),
                        yes: rm.get_flag("yes"),
                    },
                )?,
                "purge" => runs::purge(&tree, rm.get_flag("yes"))?,
                _ => runs::gc(&tree, rm.get_flag("yes"))?,
            }
            Ok(ExitCode::Success)
        }
        "status" => {
            let tree = ledger_tree(sub, &user)?;
            Ok(runs::status(
                &tree,
                &filter(sub),
                sub.get_one::<String>("submit").map(String::as_str),
                sub.get_flag("runs"),
                sub.get_flag("json"),
            ))
        }
        other => Err(CliError::usage(format!("error: unknown command {other}"))),
    }
}

fn filter(m: &ArgMatches) -> runs::Filter {
    let s = |k: &str| m.try_get_one::<String>(k).ok().flatten().cloned();
    runs::Filter {
        mode: s("mode"),
        benchmark: s("benchmark"),
        model: s("model"),
        systemname: s("systemname"),
        status: s("status"),
    }
}

/// Results dir for `runs` / `status`: flag > env > user config; must be initialised.
fn ledger_tree(m: &ArgMatches, user: &UserConfig) -> Result<ResultsTree, CliError> {
    let rd = m
        .try_get_one::<String>("results_dir")
        .ok()
        .flatten()
        .cloned()
        .or_else(|| pipeline::env_lookup("MLPSTORAGE_RESULTS_DIR").filter(|v| !v.is_empty()))
        .or_else(|| {
            user.values
                .get("results_dir")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| CliError::usage(format!("error: {}", pipeline::RESULTS_DIR_REQUIRED)))?;
    pipeline::gate(std::path::Path::new(&rd))?;
    Ok(ResultsTree::new(rd))
}

#[derive(PartialEq)]
enum Gate {
    Required,
    IfGiven,
    None,
}

fn tool(
    inv: &Invocation,
    cmd: &Command,
    m: &ArgMatches,
    user: &UserConfig,
    gate: Gate,
    f: impl FnOnce(&ToolContext) -> anyhow::Result<ExitCode>,
) -> Result<ExitCode, CliError> {
    let r = pipeline::resolve_all(cmd, m, user)?;
    if gate == Gate::Required {
        pipeline::check_required(cmd, &r, &["results_dir"])?;
    }
    let rd = r.str("results_dir").map(PathBuf::from);
    let mut orgname = None;
    if gate != Gate::None
        && let Some(rd) = &rd
    {
        orgname = Some(pipeline::gate(rd)?);
        if r.get("dry_run").as_bool() != Some(true) {
            pipeline::record_history(rd, inv);
        }
    }
    let level = if r.get("debug").as_bool() == Some(true) {
        Level::Debug
    } else {
        Level::parse(r.str("stream_log_level").unwrap_or("INFO"))
    };
    let log = Logger::new(level, r.str("color").unwrap_or("auto"));
    for w in &r.warnings {
        log.warning(w);
    }
    let ctx = ToolContext {
        results_dir: rd,
        orgname,
        args: &r.values,
        log: &log,
    };
    f(&ctx).map_err(|e| CliError::new(classify(&e), format!("{e:#}")))
}

fn history_tree(user: &UserConfig) -> Result<ResultsTree, CliError> {
    let rd = pipeline::env_lookup("MLPSTORAGE_RESULTS_DIR")
        .filter(|v| !v.is_empty())
        .or_else(|| user.values.get("results_dir").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| {
            CliError::usage("error: history lives in <results-dir>/.mlps/history: set MLPSTORAGE_RESULTS_DIR or run `mlpstorage init <orgname> [path]` once")
        })?;
    pipeline::gate(std::path::Path::new(&rd))?;
    Ok(ResultsTree::new(rd))
}

fn history_cmd(inv: &Invocation, m: &ArgMatches, user: &UserConfig) -> Result<ExitCode, CliError> {
    let tree = history_tree(user)?;
    match m.subcommand() {
        Some(("rerun", rm)) => {
            let id = rm.get_one::<i64>("rerun_id").copied().unwrap_or(0);
            let args = history::rerun_args(&tree, id)?;
            if args.first().map(String::as_str) == Some("history") {
                return Err(CliError::usage(
                    "error: refusing to rerun a history command",
                ));
            }
            eprintln!("rerunning {id}: mlpstorage {}", history::join_argv(&args));
            let mut argv = vec!["mlpstorage".to_string()];
            argv.extend(args.iter().cloned());
            let again = Invocation {
                argv,
                start: chrono::Local::now(),
            };
            run_args(&again, &args)
        }
        Some(("show", sm)) => {
            let _ = inv;
            history::show(
                &tree,
                sm.get_one::<i64>("limit").copied(),
                sm.get_one::<i64>("id").copied(),
            )?;
            Ok(ExitCode::Success)
        }
        _ => Ok(ExitCode::Success),
    }
}

fn config_cmd(root: &Command, m: &ArgMatches) -> Result<(), CliError> {
    match m.subcommand() {
        Some(("show", sm)) => admin::show(sm.get_flag("json")),
        Some(("set", sm)) => {
            let key = sm.get_one::<String>("key").cloned().unwrap_or_default();
            let values: Vec<String> = sm
                .get_many::<String>("values")
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            admin::set(root, &key, &values)
        }
        Some(("unset", sm)) => admin::unset(
            sm.get_one::<String>("key")
                .map(String::as_str)
                .unwrap_or(""),
        ),
        Some(("path", _)) => {
            println!("{}", layering::user_config_path().display());
            Ok(())
        }
        _ => Ok(()),
    }
}
