//! `uv pip compile` driver: turns a `pyproject.toml` / `requirements.in` into a pinned,
//! hashed `requirements.txt` lockfile.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::LockError;

/// The CPU-only PyTorch wheel index. Added as an extra index: uv consults extra indexes before
/// the default one, so `torch` resolves to the `+cpu` build and everything else still comes
/// from PyPI.
pub const TORCH_CPU_INDEX: &str = "https://download.pytorch.org/whl/cpu";

/// Options of one `uv pip compile` run.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// `pyproject.toml` or `requirements.in`.
    pub input: PathBuf,
    /// Where the lockfile is written.
    pub output: PathBuf,
    /// Target interpreter version (`3.11`); `None` lets uv use the current one.
    pub python_version: Option<String>,
    /// Resolve PyTorch from the CPU-only index.
    pub torch_cpu: bool,
    /// `--generate-hashes` (default on: pip then refuses any artifact whose hash differs).
    pub generate_hashes: bool,
    /// `--universal`: one lockfile valid on every platform, with markers (default on).
    pub universal: bool,
    /// `--extra X` for each (pyproject optional-dependency groups).
    pub extras: Vec<String>,
    /// `--exclude-newer DATE`: ignore releases after this date, for reproducible re-resolution.
    pub exclude_newer: Option<String>,
    /// Directory uv runs in (relative `input`/`output` resolve from it); uv records the command
    /// in the lockfile header, so relative paths keep machine paths out of committed files.
    pub current_dir: Option<PathBuf>,
}

impl GenerateOptions {
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> GenerateOptions {
        GenerateOptions {
            input: input.into(),
            output: output.into(),
            python_version: None,
            torch_cpu: false,
            generate_hashes: true,
            universal: true,
            extras: Vec::new(),
            exclude_newer: None,
            current_dir: None,
        }
    }

    /// The arguments after `uv` (without running anything).
    pub fn uv_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "pip".into(),
            "compile".into(),
            self.input.clone().into_os_string(),
            "-o".into(),
            self.output.clone().into_os_string(),
            "--quiet".into(),
        ];
        if self.universal {
            args.push("--universal".into());
        }
        if self.generate_hashes {
            args.push("--generate-hashes".into());
        }
        if let Some(v) = &self.python_version {
            args.push("--python-version".into());
            args.push(v.into());
        }
        if let Some(date) = &self.exclude_newer {
            args.push("--exclude-newer".into());
            args.push(date.into());
        }
        for extra in &self.extras {
            args.push("--extra".into());
            args.push(extra.into());
        }
        if self.torch_cpu {
            args.push("--extra-index-url".into());
            args.push(TORCH_CPU_INDEX.into());
            // Record the indexes in the lockfile so `pip install -r` finds the +cpu wheels.
            args.push("--emit-index-url".into());
        }
        args
    }
}

/// What [`generate`] did.
#[derive(Debug, Clone)]
pub struct GenerateOutcome {
    pub output: PathBuf,
    /// The command line run, for logs.
    pub command: String,
    /// `uv --version` output.
    pub uv_version: String,
}

/// Finds `uv` on PATH; [`LockError::UvMissing`] (with install hints) when absent.
pub fn find_uv() -> Result<PathBuf, LockError> {
    find_on_path("uv").ok_or(LockError::UvMissing)
}

/// The first executable file named `name` in the directories of `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `uv pip compile` with `options`; the lockfile is written by uv to `options.output`.
pub fn generate(options: &GenerateOptions) -> Result<GenerateOutcome, LockError> {
    let uv = find_uv()?;
    generate_with(&uv, options)
}

/// As [`generate`], with an explicit `uv` executable.
pub fn generate_with(uv: &Path, options: &GenerateOptions) -> Result<GenerateOutcome, LockError> {
    let input = match &options.current_dir {
        Some(dir) => dir.join(&options.input),
        None => options.input.clone(),
    };
    if !input.is_file() {
        return Err(LockError::InputNotFound { path: input });
    }
    let uv_version = Command::new(uv)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let args = options.uv_args();
    let command = std::iter::once(uv.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut uv_command = Command::new(uv);
    uv_command.args(&args);
    if let Some(dir) = &options.current_dir {
        uv_command.current_dir(dir);
    }
    let output = uv_command.output().map_err(|e| LockError::GenerateFailed {
        command: command.clone(),
        status: "spawn failure".to_string(),
        stderr: e.to_string(),
    })?;
    if !output.status.success() {
        return Err(LockError::GenerateFailed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(GenerateOutcome {
        output: match &options.current_dir {
            Some(dir) => dir.join(&options.output),
            None => options.output.clone(),
        },
        command,
        uv_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_uv_arguments() {
        let mut o = GenerateOptions::new("pyproject.toml", "requirements.txt");
        o.python_version = Some("3.11".into());
        o.torch_cpu = true;
        o.extras = vec!["full".into()];
        let args: Vec<String> = o
            .uv_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "pip compile pyproject.toml -o requirements.txt --quiet --universal --generate-hashes \
             --python-version 3.11 --extra full --extra-index-url https://download.pytorch.org/whl/cpu \
             --emit-index-url"
        );
    }

    #[test]
    fn missing_input_and_missing_uv_are_clear() {
        let tmp = tempfile::tempdir().unwrap();
        let o = GenerateOptions::new(tmp.path().join("nope.in"), tmp.path().join("out.txt"));
        let err = generate_with(Path::new("/bin/true"), &o).unwrap_err();
        assert!(err.to_string().contains("nope.in"), "{err}");
        assert!(LockError::UvMissing.to_string().contains("pip install uv"));
    }
}
