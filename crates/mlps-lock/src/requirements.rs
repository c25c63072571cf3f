//! `requirements.txt` lockfiles as written by `uv pip compile` / `pip-compile`.
//!
//! One logical line per requirement: `\` continuations are joined first, so the `--hash=` lines uv
//! emits under a pin attach to that pin. Comments start at a `#` that begins the line or follows
//! whitespace (pip's rule, which keeps `#egg=` and `#sha256=` URL fragments intact).
use std::path::Path;
use std::str::FromStr;

use pep440_rs::{Operator, VersionSpecifiers};

use crate::error::LockError;

/// Where a locked package comes from; only registry pins carry a version that can be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// A name with version specifiers, resolved from an index.
    Registry,
    /// `name @ https://…/file.whl` (a direct URL to an archive).
    Url(String),
    /// `name @ git+https://…` or a bare `git+…#egg=name` line; the version is not checkable.
    Vcs(String),
    /// `-e <src>` / `--editable <src>`: a development checkout.
    Editable(String),
}

/// One requirement of a lockfile.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedPackage {
    /// PEP 503 normalized name (lower case, runs of `-_.` folded to `-`): the comparison key.
    pub name: String,
    /// The name as spelled in the lockfile, for messages.
    pub display_name: String,
    pub extras: Vec<String>,
    /// Version specifiers (`==1.2.3`, `>=2,<3`); `None` for URL, VCS and editable requirements.
    pub specifiers: Option<VersionSpecifiers>,
    pub source: PackageSource,
    /// The environment marker after `;`, unevaluated.
    pub marker: Option<String>,
    /// `--hash=` values (`sha256:<hex>`), in file order.
    pub hashes: Vec<String>,
    /// 1-based line of the requirement in the lockfile.
    pub line: usize,
}

impl LockedPackage {
    /// The exact pinned version when the requirement is a single `==` specifier without wildcard.
    pub fn pinned_version(&self) -> Option<String> {
        let specs = self.specifiers.as_ref()?;
        match specs.iter().collect::<Vec<_>>().as_slice() {
            [one] if matches!(one.operator(), Operator::Equal | Operator::ExactEqual) => {
                Some(one.version().to_string())
            }
            _ => None,
        }
    }

    /// What the lockfile asks for, as shown in reports (`==1.2.3`, `git+https://…`, `editable`).
    pub fn expected_display(&self) -> String {
        match (&self.source, &self.specifiers) {
            (PackageSource::Registry, Some(specs)) => match self.pinned_version() {
                Some(v) => v,
                None => specs.to_string(),
            },
            (PackageSource::Registry, None) => "any version".to_string(),
            (PackageSource::Url(url), _) => format!("url {url}"),
            (PackageSource::Vcs(url), _) => format!("vcs {url}"),
            (PackageSource::Editable(src), _) => format!("editable {src}"),
        }
    }
}

/// A parsed lockfile: its requirements plus what its header says about how it was made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lockfile {
    pub packages: Vec<LockedPackage>,
    /// `uv` or `pip-compile` when the header names it.
    pub generated_by: Option<String>,
    /// The target Python of the compile (`--python-version X` in the recorded command).
    pub python_version: Option<String>,
    /// Pip options kept verbatim (`--index-url …`, `--extra-index-url …`, `-r …`).
    pub options: Vec<String>,
}

impl Lockfile {
    /// Reads and parses a lockfile; a missing file is [`LockError::LockfileNotFound`].
    pub fn read(path: &Path) -> Result<Lockfile, LockError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LockError::LockfileNotFound {
                    path: path.to_path_buf(),
                }
            } else {
                LockError::io(path, e)
            }
        })?;
        Lockfile::parse_named(&text, &path.display().to_string())
    }

    /// Parses lockfile text; errors are located as `<input>:<line>`.
    pub fn parse(text: &str) -> Result<Lockfile, LockError> {
        Lockfile::parse_named(text, "<lockfile>")
    }

    /// As [`Lockfile::parse`], naming `origin` (usually the path) in errors.
    pub fn parse_named(text: &str, origin: &str) -> Result<Lockfile, LockError> {
        let mut lock = Lockfile::default();
        for (line_no, raw) in logical_lines(text) {
            let trimmed = raw.trim();
            if trimmed.starts_with('#') {
                lock.read_header_comment(trimmed);
                continue;
            }
            let content = strip_comment(&raw);
            let content = content.trim();
            if content.is_empty() {
                continue;
            }
            let err = |message: String| LockError::Parse {
                origin: origin.to_string(),
                line: line_no,
                message,
            };
            let (body, hashes) = split_hashes(content).map_err(&err)?;
            if body.is_empty() {
                // A `--hash` line whose continuation was lost still belongs to the previous pin.
                match lock.packages.last_mut() {
                    Some(prev) => prev.hashes.extend(hashes),
                    None => return Err(err("--hash before any requirement".to_string())),
                }
                continue;
            }
            if let Some(src) = strip_option(&body, &["-e", "--editable"]) {
                lock.packages
                    .push(editable_package(src, hashes, line_no).map_err(&err)?);
                continue;
            }
            if body.starts_with('-') {
                lock.options.push(body.to_string());
                continue;
            }
            let mut package = parse_requirement(&body, line_no).map_err(&err)?;
            package.hashes = hashes;
            lock.packages.push(package);
        }
        Ok(lock)
    }

    fn read_header_comment(&mut self, comment: &str) {
        let text = comment.trim_start_matches('#').trim();
        if self.generated_by.is_none() {
            if text.contains("autogenerated by uv") || text.starts_with("uv pip compile") {
                self.generated_by = Some("uv".to_string());
            } else if text.contains("pip-compile") {
                self.generated_by = Some("pip-compile".to_string());
            }
        }
        if self.python_version.is_none() {
            let words: Vec<&str> = text.split_whitespace().collect();
            for (i, word) in words.iter().enumerate() {
                if let Some(v) = word.strip_prefix("--python-version=") {
                    self.python_version = Some(v.to_string());
                } else if (*word == "--python-version" || *word == "-p")
                    && let Some(v) = words.get(i + 1)
                {
                    self.python_version = Some((*v).to_string());
                } else if *word == "Python" && text.contains("pip-compile") {
                    // pip-compile: "by pip-compile with Python 3.11"
                    if let Some(v) = words.get(i + 1) {
                        self.python_version = Some((*v).to_string());
                    }
                }
            }
        }
    }
}

/// PEP 503 normalization: lower case, every run of `-`, `_`, `.` becomes one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            in_separator = true;
            continue;
        }
        if in_separator && !out.is_empty() {
            out.push('-');
        }
        in_separator = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// Joins `\`-continued physical lines; yields (first physical line number, logical line).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        let (start, mut acc) = pending.take().unwrap_or((line_no, String::new()));
        let stripped = line.trim_end();
        if let Some(head) = stripped.strip_suffix('\\') {
            acc.push_str(head);
            acc.push(' ');
            pending = Some((start, acc));
        } else {
            acc.push_str(line);
            out.push((start, acc));
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

/// Drops a trailing comment: `#` at the start or after whitespace (pip's rule).
fn strip_comment(line: &str) -> String {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return line[..i].to_string();
        }
    }
    line.to_string()
}

/// Separates `--hash=algo:hex` (or `--hash algo:hex`) tokens from the requirement text.
fn split_hashes(content: &str) -> Result<(String, Vec<String>), String> {
    let mut body = Vec::new();
    let mut hashes = Vec::new();
    let mut tokens = content.split_whitespace();
    while let Some(token) = tokens.next() {
        let value = if let Some(v) = token.strip_prefix("--hash=") {
            v.to_string()
        } else if token == "--hash" {
            tokens
                .next()
                .ok_or_else(|| "--hash without a value".to_string())?
                .to_string()
        } else {
            body.push(token);
            continue;
        };
        if !value.contains(':') {
            return Err(format!(
                "--hash={value} is not of the form <algorithm>:<hex digest>"
            ));
        }
        hashes.push(value);
    }
    Ok((body.join(" "), hashes))
}

fn strip_option<'a>(body: &'a str, names: &[&str]) -> Option<&'a str> {
    for name in names {
        if let Some(rest) = body.strip_prefix(name) {
            if let Some(v) = rest.strip_prefix('=') {
                return Some(v.trim());
            }
            if rest.starts_with(char::is_whitespace) {
                return Some(rest.trim());
            }
        }
    }
    None
}

fn is_vcs_url(url: &str) -> bool {
    ["git+", "hg+", "svn+", "bzr+"]
        .iter()
        .any(|p| url.starts_with(p))
}

/// `https://…`, `file://…`: a scheme (letters, digits, `+-.`) directly followed by `://`.
fn starts_with_url_scheme(text: &str) -> bool {
    text.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// `#egg=name` fragment of a URL, if any.
fn egg_name(url: &str) -> Option<String> {
    let fragment = url.split_once('#')?.1;
    fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("egg="))
        .map(|n| n.split('[').next().unwrap_or(n).to_string())
}

fn editable_package(src: &str, hashes: Vec<String>, line: usize) -> Result<LockedPackage, String> {
    if src.is_empty() {
        return Err("-e/--editable without a source".to_string());
    }
    let display_name = egg_name(src).unwrap_or_else(|| {
        // A local path: its last component is the best name we have.
        src.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(src)
            .to_string()
    });
    Ok(LockedPackage {
        name: normalize_name(&display_name),
        display_name,
        extras: Vec::new(),
        specifiers: None,
        source: PackageSource::Editable(src.to_string()),
        marker: None,
        hashes,
        line,
    })
}

/// Parses `name[extras] specifiers ; marker`, `name @ url ; marker` or a bare VCS URL with `#egg=`.
fn parse_requirement(body: &str, line: usize) -> Result<LockedPackage, String> {
    let (requirement, marker) = match body.split_once(';') {
        Some((r, m)) => (
            r.trim(),
            Some(m.trim().to_string()).filter(|m| !m.is_empty()),
        ),
        None => (body.trim(), None),
    };
    if is_vcs_url(requirement) || starts_with_url_scheme(requirement) {
        let display_name = egg_name(requirement).ok_or_else(|| {
            format!("`{requirement}`: a bare URL needs `#egg=<name>` (or write `name @ url`)")
        })?;
        let source = if is_vcs_url(requirement) {
            PackageSource::Vcs(requirement.to_string())
        } else {
            PackageSource::Url(requirement.to_string())
        };
        return Ok(LockedPackage {
            name: normalize_name(&display_name),
            display_name,
            extras: Vec::new(),
            specifiers: None,
            source,
            marker,
            hashes: Vec::new(),
            line,
        });
    }
    let name_end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    let display_name = &requirement[..name_end];
    if display_name.is_empty() {
        return Err(format!("`{requirement}`: expected a package name"));
    }
    let mut rest = requirement[name_end..].trim_start();
    let mut extras = Vec::new();
    if let Some(after) = rest.strip_prefix('[') {
        let (inside, tail) = after
            .split_once(']')
            .ok_or_else(|| format!("`{requirement}`: unclosed `[` in extras"))?;
        extras = inside
            .split(',')
            .map(normalize_name)
            .filter(|e| !e.is_empty())
            .collect();
        rest = tail.trim_start();
    }
    let (specifiers, source) = if let Some(url) = rest.strip_prefix('@') {
        let url = url.trim();
        if url.is_empty() {
            return Err(format!("`{requirement}`: `@` without a URL"));
        }
        let source = if is_vcs_url(url) {
            PackageSource::Vcs(url.to_string())
        } else {
            PackageSource::Url(url.to_string())
        };
        (None, source)
    } else if rest.is_empty() {
        (None, PackageSource::Registry)
    } else {
        // `name (>=1.0)` is legal PEP 508; the parentheses carry no meaning.
        let spec_text = rest.trim_start_matches('(').trim_end_matches(')').trim();
        let specs = VersionSpecifiers::from_str(spec_text)
            .map_err(|e| format!("`{requirement}`: bad version specifier `{spec_text}`: {e}"))?;
        (Some(specs), PackageSource::Registry)
    };
    Ok(LockedPackage {
        name: normalize_name(display_name),
        display_name: display_name.to_string(),
        extras,
        specifiers,
        source,
        marker,
        hashes: Vec::new(),
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UV_OUTPUT: &str = "\
# This file was autogenerated by uv via the following command:
#    uv pip compile pyproject.toml -o requirements.txt --universal --generate-hashes --python-version 3.11
--index-url https://pypi.org/simple
idna==3.7 \\
    --hash=sha256:028ff3aadf0609c1fd278d8ea3089299412a7a8b9bd005dd08b9f8285bcb5cfc \\
    --hash=sha256:82fee1fc78add43492d3a1898bfa6d8a904cc97d8427f683ed8e798d07761aa0
    # via requests
numpy==1.26.4 ; python_version < '3.12' \\
    --hash=sha256:aaa
Six==1.16.0
zope.interface==6.4
mpi4py>=3.1
dlio-benchmark @ git+https://github.com/argonne-lcf/dlio_benchmark@abc123
torch==2.3.1+cpu
-e ./vdb_benchmark
pkg[extra1,Extra_2]==1.0 # trailing comment
";

    #[test]
    fn parses_uv_output() {
        let lock = Lockfile::parse(UV_OUTPUT).unwrap();
        assert_eq!(lock.generated_by.as_deref(), Some("uv"));
        assert_eq!(lock.python_version.as_deref(), Some("3.11"));
        assert_eq!(lock.options, vec!["--index-url https://pypi.org/simple"]);
        let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "idna",
                "numpy",
                "six",
                "zope-interface",
                "mpi4py",
                "dlio-benchmark",
                "torch",
                "vdb-benchmark",
                "pkg"
            ]
        );
        let idna = &lock.packages[0];
        assert_eq!(idna.pinned_version().as_deref(), Some("3.7"));
        assert_eq!(idna.hashes.len(), 2);
        assert_eq!(idna.line, 4);
        let numpy = &lock.packages[1];
        assert_eq!(numpy.marker.as_deref(), Some("python_version < '3.12'"));
        assert_eq!(numpy.hashes, vec!["sha256:aaa"]);
        assert_eq!(lock.packages[4].pinned_version(), None);
        assert_eq!(lock.packages[4].expected_display(), ">=3.1");
        assert!(matches!(lock.packages[5].source, PackageSource::Vcs(_)));
        assert_eq!(
            lock.packages[6].pinned_version().as_deref(),
            Some("2.3.1+cpu")
        );
        assert!(matches!(
            lock.packages[7].source,
            PackageSource::Editable(_)
        ));
        assert_eq!(lock.packages[8].extras, vec!["extra1", "extra-2"]);
        assert_eq!(lock.packages[8].display_name, "pkg");
    }

    #[test]
    fn bad_specifier_names_line() {
        let err = Lockfile::parse_named("six==1.0\nfoo===\n", "req.txt").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("req.txt:2:"), "{msg}");
    }

    #[test]
    fn bare_vcs_line_uses_egg() {
        let lock = Lockfile::parse("git+https://x/y.git@v1#egg=My_Pkg\n").unwrap();
        assert_eq!(lock.packages[0].name, "my-pkg");
        assert!(matches!(lock.packages[0].source, PackageSource::Vcs(_)));
        assert!(Lockfile::parse("https://x/y.whl\n").is_err());
    }

    #[test]
    fn pip_compile_header() {
        let lock = Lockfile::parse(
            "#\n# This file is autogenerated by pip-compile with Python 3.12\n#\nsix==1.16.0\n",
        )
        .unwrap();
        assert_eq!(lock.generated_by.as_deref(), Some("pip-compile"));
        assert_eq!(lock.python_version.as_deref(), Some("3.12"));
    }

    #[test]
    fn missing_lockfile_says_how_to_make_one() {
        let err = Lockfile::read(Path::new("/nonexistent/requirements.txt")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("Lockfile not found: /nonexistent/requirements.txt"),
            "{msg}"
        );
        assert!(msg.contains("mlpstorage lockfile generate"), "{msg}");
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize_name("Foo__Bar.baz"), "foo-bar-baz");
        assert_eq!(normalize_name("typing_extensions"), "typing-extensions");
    }
}
