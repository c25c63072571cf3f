//! Run categories and issues (mlpstorage.md §3.1).
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Closed,
    Open,
    Invalid,
}

impl Category {
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::Closed => "closed",
            Category::Open => "open",
            Category::Invalid => "invalid",
        }
    }
    /// Case-insensitive parse of a metadata `verification` value.
    pub fn parse(s: &str) -> Option<Category> {
        match s.trim().to_ascii_lowercase().as_str() {
            "closed" => Some(Category::Closed),
            "open" => Some(Category::Open),
            "invalid" => Some(Category::Invalid),
            _ => None,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::Closed => "CLOSED",
            Category::Open => "OPEN",
            Category::Invalid => "INVALID",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub validation: Category,
    pub message: String,
    pub parameter: Option<String>,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl Issue {
    pub fn new(validation: Category, message: impl Into<String>) -> Issue {
        Issue {
            validation,
            message: message.into(),
            parameter: None,
            expected: None,
            actual: None,
        }
    }
    pub fn param(mut self, p: impl Into<String>) -> Issue {
        self.parameter = Some(p.into());
        self
    }
    pub fn expected(mut self, e: impl ToString) -> Issue {
        self.expected = Some(e.to_string());
        self
    }
    pub fn actual(mut self, a: impl ToString) -> Issue {
        self.actual = Some(a.to_string());
        self
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.validation {
            Category::Invalid => "INVALID",
            Category::Closed => "Closed",
            Category::Open => "Open",
        };
        write!(f, "{label}: {}", self.message)?;
        if let Some(p) = &self.parameter {
            write!(f, " [{p}")?;
            if let Some(e) = &self.expected {
                write!(f, " expected {e}")?;
            }
            if let Some(a) = &self.actual {
                write!(f, " actual {a}")?;
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub category: Category,
    pub issues: Vec<Issue>,
}

impl Verdict {
    /// Aggregation of §3.1: any INVALID → INVALID; else any OPEN → OPEN; else CLOSED.
    pub fn from_issues(issues: Vec<Issue>) -> Verdict {
        let category = issues
            .iter()
            .map(|i| i.validation)
            .max()
            .unwrap_or(Category::Closed);
        Verdict { category, issues }
    }
    pub fn invalid_issues(&self) -> impl Iterator<Item = &Issue> {
        self.issues
            .iter()
            .filter(|i| i.validation == Category::Invalid)
    }
    /// The one-line summary the reference logs after the issues.
    pub fn summary_line(&self, run_id: &str) -> String {
        match self.category {
            Category::Invalid => format!(
                "Benchmark run is INVALID due to {} issues ({run_id})",
                self.invalid_issues().count()
            ),
            Category::Open => format!("Benchmark run qualifies for OPEN category ({run_id})"),
            Category::Closed => format!("Benchmark run qualifies for CLOSED category ({run_id})"),
        }
    }
}

/// What the launcher should do with a verdict (table in §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchDecision {
    Run,
    RunWithWarning(String),
    Abort(String),
}

/// Launch policy: `mode` is "closed", "open" or "whatif".
pub fn launch_decision(
    mode: &str,
    verdict: &Verdict,
    allow_invalid_params: bool,
) -> LaunchDecision {
    match (mode, verdict.category) {
        ("closed", Category::Closed) | ("open", Category::Closed) => LaunchDecision::Run,
        ("closed", Category::Open) => LaunchDecision::Abort(
            "Parameters allowed for open but not closed. Use --open and rerun the benchmark.".into(),
        ),
        ("closed", Category::Invalid) => {
            LaunchDecision::Abort("Invalid configuration found. Aborting benchmark run.".into())
        }
        ("open", Category::Open) => LaunchDecision::RunWithWarning("Running as allowed open configuration".into()),
        ("open", Category::Invalid) if allow_invalid_params => LaunchDecision::RunWithWarning(
            "Invalid configuration found. Allowing the benchmark to proceed.".into(),
        ),
        ("open", Category::Invalid) => {
            LaunchDecision::Abort("Invalid configuration found. Aborting benchmark run.".into())
        }
        _ => LaunchDecision::RunWithWarning(
            "Running the benchmark without verification for open or closed configurations. These results are not valid for submission.".into(),
        ),
    }
}
