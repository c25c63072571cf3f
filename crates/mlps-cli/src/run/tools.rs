//! Utility commands whose engines live in other crates (`mlps-rules`, `mlps-lock`): one dispatch
//! function each. Stubs until those engines are wired in; replace the body, keep the signature.
//! They return the process exit code on success (`validate`: 0 all pass, 1 any violation).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::not_available;
use crate::exit::{CliError, ExitCode};
use crate::log::Logger;

/// What a utility command gets from the CLI.
pub struct ToolContext<'a> {
    /// Results root, when one was resolved (and initialised, for gated commands).
    pub results_dir: Option<PathBuf>,
    /// Orgname from the sentinel, when the results dir is initialised.
    pub orgname: Option<String>,
    /// Effective options (dest → value).
    pub args: &'a Map<String, Value>,
    /// Logger.
    pub log: &'a Logger,
}

/// `mlpstorage validate <submission-dir>`: every rule of the edition, best effort; exit 0 only
/// when no finding is an error.
pub fn validate(ctx: &ToolContext, submission_dir: &Path) -> anyhow::Result<ExitCode> {
    if !submission_dir.is_dir() {
        return Err(CliError::new(
            ExitCode::FileNotFound,
            format!(
                "submission directory not found: {} (pass the folder that holds closed/ or open/)",
                submission_dir.display()
            ),
        )
        .into());
    }
    let edition = arg_str(ctx, "edition");
    if let Some(e) = edition
        && mlps_rules::Edition::load(e).is_err()
    {
        return Err(CliError::usage(format!(
            "error: unknown --edition {e:?}: use 1.0, 2.0 or 3.0"
        ))
        .into());
    }
    let findings = mlps_rules::validate_submission(submission_dir, edition);
    let (mut errors, mut warnings) = (0usize, 0usize);
    for f in &findings {
        match f.severity {
            mlps_rules::Severity::Error => {
                errors += 1;
                ctx.log.error(&f.to_string());
            }
            mlps_rules::Severity::Warning => {
                warnings += 1;
                ctx.log.warning(&f.to_string());
            }
            mlps_rules::Severity::Info => ctx.log.info(&f.to_string()),
        }
    }
    if !arg_flag(ctx, "skip_output_file") {
        let csv = PathBuf::from(arg_str(ctx, "csv").unwrap_or("summary.csv"));
        mlps_rules::reportgen::atomic_write(
            &csv,
            mlps_rules::findings_to_csv(&findings).as_bytes(),
        )
        .map_err(|e| anyhow::anyhow!("writing the findings CSV {}: {e}", csv.display()))?;
        ctx.log
            .info(&format!("findings written to {}", csv.display()));
    }
    let passed = mlps_rules::validate::passed(&findings);
    println!(
        "{}: {errors} error(s), {warnings} warning(s), {} finding(s) in all",
        if passed { "PASSED" } else { "FAILED" },
        findings.len()
    );
    Ok(if passed {
        ExitCode::Success
    } else {
        ExitCode::GeneralError
    })
}

/// `mlpstorage reports reportgen`: per-model rollups next to the data, `results.json` and
/// `results.csv` at the results root, and a terminal table; every skipped leaf with its reason.
pub fn reportgen(ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    let rd = ctx.results_dir.clone().ok_or_else(|| {
        CliError::usage(
            "error: --results-dir/-rd is required: run `mlpstorage init <orgname> [path]` once to record a default, pass it on the command line, or set MLPSTORAGE_RESULTS_DIR",
        )
    })?;
    let report = mlps_rules::reportgen::generate(&rd);
    let rollups = report
        .write_rollups()
        .map_err(|e| anyhow::anyhow!("writing per-model rollups under {}: {e}", rd.display()))?;
    report.write(&rd).map_err(|e| {
        anyhow::anyhow!("writing results.json/results.csv in {}: {e}", rd.display())
    })?;
    print!("{}", report.render_table());
    println!(
        "{} result row(s), {} rollup folder(s); results.json and results.csv in {}",
        report.rows.len(),
        rollups.len(),
        rd.display()
    );
    Ok(ExitCode::Success)
}

/// `mlpstorage lockfile generate`: a Python lockfile through `uv pip compile`, or with `--tool`
/// the tool lock of this binary, its embedded workloads and the system tools a run uses.
pub fn lockfile_generate(ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    let output = PathBuf::from(arg_str(ctx, "output").unwrap_or("requirements.txt"));
    if arg_flag(ctx, "tool") {
        let lock = current_tool_lock()?;
        lock.write(&output)?;
        println!("Generated tool lock: {}", output.display());
        return Ok(ExitCode::Success);
    }
    let input = PathBuf::from(arg_str(ctx, "pyproject").unwrap_or("pyproject.toml"));
    if !input.exists() {
        return Err(CliError::new(
            ExitCode::FileNotFound,
            format!(
                "pyproject.toml not found: {} (pass --pyproject PATH to a pyproject.toml or requirements.in)",
                input.display()
            ),
        )
        .into());
    }
    let mut opts = mlps_lock::GenerateOptions::new(&input, &output);
    opts.python_version = arg_str(ctx, "python_version").map(str::to_string);
    opts.exclude_newer = arg_str(ctx, "exclude_newer").map(str::to_string);
    opts.torch_cpu = arg_flag(ctx, "torch_cpu");
    opts.generate_hashes = true;
    opts.extras = arg_list(ctx, "extra");
    let runs: Vec<(&str, mlps_lock::GenerateOptions)> = if arg_flag(ctx, "all") {
        let mut full = opts.clone();
        full.output = output.with_file_name("requirements-full.txt");
        full.extras.push("full".into());
        vec![("base ", opts), ("full ", full)]
    } else {
        vec![("", opts)]
    };
    for (label, o) in runs {
        match mlps_lock::generate(&o) {
            Ok(_) => println!("Generated {label}lockfile: {}", o.output.display()),
            Err(mlps_lock::LockError::UvMissing) => {
                return Err(CliError::new(
                    ExitCode::Failure,
                    "uv is not installed. Install with: pip install uv",
                )
                .into());
            }
            Err(e) => {
                return Err(CliError::new(
                    ExitCode::Failure,
                    format!("Lockfile generation failed: {e}"),
                )
                .into());
            }
        }
    }
    Ok(ExitCode::Success)
}

/// `mlpstorage lockfile verify`: the installed packages of `--python` against a requirements
/// lockfile, or this host against a tool lock (a JSON file written by `generate --tool`).
pub fn lockfile_verify(ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    let path = PathBuf::from(arg_str(ctx, "lockfile").unwrap_or("requirements.txt"));
    if !path.exists() {
        return Err(CliError::new(
            ExitCode::FileNotFound,
            format!(
                "Lockfile not found: {}\nGenerate a lockfile with: mlpstorage lockfile generate",
                path.display()
            ),
        )
        .into());
    }
    if is_tool_lock(&path) {
        let expected = mlps_lock::ToolLock::read(&path)?;
        let report = expected.verify(&current_tool_lock()?);
        println!("{}", report.render());
        return Ok(if report.passed() {
            ExitCode::Success
        } else {
            ExitCode::Failure
        });
    }
    let python = PathBuf::from(arg_str(ctx, "python").unwrap_or("python3"));
    let mut options = mlps_lock::VerifyOptions {
        allow_missing: arg_flag(ctx, "allow_missing"),
        ..Default::default()
    };
    options
        .skip
        .extend(arg_list(ctx, "skip").into_iter().map(|s| s.to_lowercase()));
    let report = verify_python_lockfile(&path, &python, &options)?;
    println!("{}", report.render(&path));
    if report.passed() {
        return Ok(ExitCode::Success);
    }
    println!("\nTo fix:");
    for c in report.fix_commands(&path, Some(&python)) {
        println!("  {c}");
    }
    Ok(ExitCode::Failure)
}

/// Reads the lockfile and the interpreter's installed distributions and compares them.
pub fn verify_python_lockfile(
    lockfile: &Path,
    python: &Path,
    options: &mlps_lock::VerifyOptions,
) -> anyhow::Result<mlps_lock::VerifyReport> {
    let lock = mlps_lock::Lockfile::read(lockfile)?;
    let env = mlps_lock::InstalledEnv::from_python(python)?;
    Ok(mlps_lock::verify(&lock, &env, options))
}

/// The tool lock of the running binary: its hash, the embedded workload definitions and the
/// versions of the system tools a run may call.
pub fn current_tool_lock() -> anyhow::Result<mlps_lock::ToolLock> {
    let identity = mlps_lock::ToolIdentity {
        name: "mlpstorage".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        binary_sha256: mlps_lock::current_exe_sha256()?,
    };
    let workloads = mlps_dlio_driver::workload::BUILTIN
        .iter()
        .map(|(name, text)| (*name, text.as_bytes()));
    Ok(mlps_lock::ToolLock::capture(
        identity,
        workloads,
        &["mpirun", "fio"],
    ))
}

fn is_tool_lock(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|t| {
            t.trim_start().starts_with('{') && t.contains(mlps_lock::tool_lock::TOOL_LOCK_SCHEMA)
        })
        .unwrap_or(false)
}

fn arg_str<'a>(ctx: &'a ToolContext, key: &str) -> Option<&'a str> {
    ctx.args.get(key).and_then(Value::as_str)
}

fn arg_flag(ctx: &ToolContext, key: &str) -> bool {
    ctx.args.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn arg_list(ctx: &ToolContext, key: &str) -> Vec<String> {
    match ctx.args.get(key) {
        Some(Value::Array(v)) => v
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `mlpstorage rules-coverage`.
pub fn rules_coverage(_ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    not_available("rules-coverage")
}

/// `mlpstorage submit`.
pub fn submit(_ctx: &ToolContext) -> anyhow::Result<ExitCode> {
    not_available("submit")
}
