//! Rules editions as data (mlpstorage.md §3.4, upstream `mlpstorage_py/rules/editions.yaml`).
//!
//! Editions 1.0, 2.0 and 3.0 are built in so older trees are judged by their own rules. Only 3.0
//! carries an upstream `checker:` block; the checker values given for 1.0/2.0 here are this
//! project's reading of those rounds (documented per field) so `validate` can still say something
//! useful about an old tree instead of refusing it.
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum EditionError {
    #[error("unknown rules edition {0:?} (known: 1.0, 2.0, 3.0)")]
    Unknown(String),
    #[error("edition {edition} table invalid: {reason}")]
    Invalid { edition: String, reason: String },
}

/// Result-tree layout generation of an edition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// v1.0: `Closed/<org>/results/<system>/<model>/<accel>/run_N/`, `configs/`, 5 runs, no warm-up.
    V1,
    /// v2.0 / v3.0: `closed/<org>/results/<system>/<family>/<model>/...`, `dlio_config/`.
    V3,
}

#[derive(Debug, Clone)]
pub struct Edition {
    pub id: String,
    pub layout: Layout,
    /// Upstream carries a `checker:` block for this edition (EDN-04 fails a manifest declaring one without).
    pub has_checker: bool,
    /// family -> model -> accelerators (empty = any). Closed and open list the same workloads.
    pub workloads: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    pub training_au_thresholds: BTreeMap<String, f64>,
    pub closed_mpi_processes: BTreeMap<String, u64>,
    pub checkpoint_size_gb: BTreeMap<String, f64>,
    pub accelerator_memory_gb: BTreeMap<String, f64>,
    /// (seed, trials, inter_option_delay_s)
    pub kvcache_closed_sequence: Option<(u64, u64, u64)>,
    pub runs_per_result: BTreeMap<String, usize>,
    pub datagen_required_files: Vec<String>,
    pub run_required_files: Vec<String>,
    pub checkpoint_required_files: Vec<String>,
    pub dlio_revisions: Vec<String>,
    /// 4.3.4: a checkpoint leaf without a recorded accelerator fails (true) or only warns (false:
    /// v3.0 checkpoint rows recorded no accelerator at all, editions.yaml `accelerator: any`).
    pub checkpoint_accelerator_required: bool,
    /// v2.0: vectordb was preview-only (a CLOSED vectordb run is INVALID).
    pub vectordb_preview_only: bool,
}

fn map<V: Clone>(xs: &[(&str, V)]) -> BTreeMap<String, V> {
    xs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}
fn strs(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

pub const KNOWN_EDITIONS: [&str; 3] = ["1.0", "2.0", "3.0"];
pub const CURRENT_EDITION: &str = "3.0";

impl Edition {
    /// Load a built-in edition by id ("3.0", also accepts "v3.0", "3").
    pub fn load(id: &str) -> Result<Edition, EditionError> {
        let norm = id.trim().trim_start_matches(['v', 'V']);
        let norm = if norm.contains('.') {
            norm.to_string()
        } else {
            format!("{norm}.0")
        };
        let e = match norm.as_str() {
            "3.0" => Self::v3(),
            "2.0" => Self::v2(),
            "1.0" => Self::v1(),
            _ => return Err(EditionError::Unknown(id.to_string())),
        };
        e.validate()?;
        Ok(e)
    }

    pub fn current() -> Edition {
        Self::v3()
    }

    fn v3() -> Edition {
        let acc = strs(&["b200", "mi355"]);
        let ck = map(&[
            ("llama3-8b", acc.clone()),
            ("llama3-70b", acc.clone()),
            ("llama3-405b", acc.clone()),
            ("llama3-1t", acc.clone()),
        ]);
        let mut workloads = BTreeMap::new();
        workloads.insert(
            "training".into(),
            map(&[("unet3d", acc.clone()), ("retinanet", acc.clone())]),
        );
        workloads.insert("checkpointing".into(), ck);
        workloads.insert("vector_database".into(), map(&[("milvus", vec![])]));
        workloads.insert("kv_cache".into(), map(&[("llama3.1-8b", vec![])]));
        Edition {
            id: "3.0".into(),
            layout: Layout::V3,
            has_checker: true,
            workloads,
            training_au_thresholds: map(&[("unet3d", 0.90), ("retinanet", 0.85)]),
            closed_mpi_processes: map(&[
                ("llama3-8b", 8),
                ("llama3-70b", 64),
                ("llama3-405b", 512),
                ("llama3-1t", 1024),
            ]),
            checkpoint_size_gb: map(&[
                ("llama3-8b", 105.0),
                ("llama3-70b", 912.0),
                ("llama3-405b", 5290.0),
                ("llama3-1t", 18000.0),
            ]),
            accelerator_memory_gb: map(&[
                ("b200", 180.0),
                ("mi355", 288.0),
                ("h100", 80.0),
                ("a100", 80.0),
            ]),
            kvcache_closed_sequence: Some((42, 3, 90)),
            runs_per_result: map(&[
                ("training", 6),
                ("checkpointing", 2),
                ("vector_database", 5),
                ("kv_cache", 1),
            ]),
            datagen_required_files: strs(&[
                r"training_datagen\.stdout\.log$",
                r"training_datagen\.stderr\.log$",
                r"dlio\.log$",
                r"training_.*_metadata\.json$",
            ]),
            run_required_files: strs(&[
                r"training_run\.stdout.log",
                r"training_run\.stderr.log",
                r".*output\.json",
                r".*per_epoch_stats\.json",
                r".*summary\.json",
                r"dlio\.log",
            ]),
            checkpoint_required_files: strs(&[
                r"checkpointing_run\.stdout\.log",
                r"checkpointing_run\.stderr\.log",
                r".*output\.json",
                r".*per_epoch_stats\.json",
                r".*summary\.json",
                r"dlio\.log",
            ]),
            dlio_revisions: strs(&[
                "edaf4bb3d6343ef2fb6b9f6dbafa6102032ae8bf",
                "24b13d7630a12e3d08624e5db254694a09f71599",
                "a7d56e73ed4630e47f89720436290a23c0f94b6c",
                "f6796ed281e39ccc83a450e2b1f21b9c909d8fd0",
                "252a54b18d113541e1e8e24832921fac0a7f2b96",
                "86945a7a203912435774e0972f6350221446229e",
                "c338e07412350df4d72279be985ff31b82407a80",
                "95c6a9d46a2a072b7f1455b65b3a5e22602b53e5",
                "17d982a3c7842355c25787c97f636a9f6a474caa",
                "21c0723de897add728158943d369abd4b333f7dc",
            ]),
            checkpoint_accelerator_required: false,
            vectordb_preview_only: false,
        }
    }

    /// v2.0: a100/h100 training (unet3d, resnet50, cosmoflow) and the four checkpointing models.
    /// No upstream checker block; values: AU minima from the shipped *_h100 templates (unet3d 0.90,
    /// resnet50 0.90, cosmoflow 0.70), Table 2 process counts and sizes as in 3.0, 6 training runs
    /// (1 warm-up + 5) as in the 2.0 tool's reportgen.
    fn v2() -> Edition {
        let acc = strs(&["a100", "h100"]);
        let mut e = Self::v3();
        e.id = "2.0".into();
        e.has_checker = false;
        e.workloads.clear();
        e.workloads.insert(
            "training".into(),
            map(&[
                ("unet3d", acc.clone()),
                ("resnet50", acc.clone()),
                ("cosmoflow", acc.clone()),
            ]),
        );
        e.workloads.insert(
            "checkpointing".into(),
            map(&[
                ("llama3-8b", acc.clone()),
                ("llama3-70b", acc.clone()),
                ("llama3-405b", acc.clone()),
                ("llama3-1t", acc.clone()),
            ]),
        );
        e.training_au_thresholds =
            map(&[("unet3d", 0.90), ("resnet50", 0.90), ("cosmoflow", 0.70)]);
        e.kvcache_closed_sequence = None;
        e.runs_per_result = map(&[("training", 6), ("checkpointing", 2)]);
        e.dlio_revisions = vec![];
        e.vectordb_preview_only = true;
        e
    }

    /// v1.0: a100/h100 training only, exactly 5 runs and no warm-up, no metadata, no code images.
    fn v1() -> Edition {
        let mut e = Self::v2();
        e.id = "1.0".into();
        e.layout = Layout::V1;
        e.workloads.remove("checkpointing");
        e.closed_mpi_processes.clear();
        e.checkpoint_size_gb.clear();
        e.runs_per_result = map(&[("training", 5)]);
        e
    }

    pub fn families(&self) -> Vec<&str> {
        self.workloads.keys().map(|s| s.as_str()).collect()
    }
    pub fn models(&self, family: &str) -> Vec<&str> {
        self.workloads
            .get(family)
            .map(|m| m.keys().map(|s| s.as_str()).collect())
            .unwrap_or_default()
    }
    pub fn has_model(&self, family: &str, model: &str) -> bool {
        self.workloads
            .get(family)
            .is_some_and(|m| m.contains_key(model))
    }
    pub fn runs(&self, family: &str) -> Option<usize> {
        self.runs_per_result.get(family).copied()
    }
    pub fn au_threshold(&self, model: &str) -> Option<f64> {
        self.training_au_thresholds.get(model).copied()
    }

    /// Table validation of §3.4.
    pub fn validate(&self) -> Result<(), EditionError> {
        let bad = |reason: String| {
            Err(EditionError::Invalid {
                edition: self.id.clone(),
                reason,
            })
        };
        for (m, t) in &self.training_au_thresholds {
            if !(*t > 0.0 && *t <= 1.0) {
                return bad(format!(
                    "AU threshold for {m} must be a fraction in (0,1], got {t}"
                ));
            }
        }
        for (m, n) in &self.closed_mpi_processes {
            if *n == 0 {
                return bad(format!("closed_mpi_processes[{m}] must be positive"));
            }
        }
        for (m, s) in &self.checkpoint_size_gb {
            if *s <= 0.0 {
                return bad(format!("checkpoint_size_gb[{m}] must be positive"));
            }
        }
        for models in self.workloads.values() {
            for accels in models.values() {
                for a in accels {
                    if !self.accelerator_memory_gb.contains_key(a) {
                        return bad(format!(
                            "accelerator_memory_gb lacks workload accelerator {a}"
                        ));
                    }
                }
            }
        }
        for (f, n) in &self.runs_per_result {
            if *n == 0 || !self.workloads.contains_key(f) {
                return bad(format!(
                    "runs_per_result key {f} must be an edition family with a positive count"
                ));
            }
        }
        Ok(())
    }
}

/// Checkpointing model constants (mlpstorage.md §3.2.2): (MinProcs, ZeroLevel, GPUperDP, ClosedGPUs).
pub fn llm_allowed_values(model: &str) -> Option<(u64, u64, u64, u64)> {
    Some(match model {
        "llama3-1t" => (8, 1, 512, 1024),
        "llama3-405b" => (8, 1, 256, 512),
        "llama3-70b" => (8, 3, 8, 64),
        "llama3-8b" => (8, 3, 8, 8),
        _ => return None,
    })
}

/// Reference DLIO workload template for a checkpointing model (rule 4.6.3, 4.6.4), as JSON.
pub fn checkpoint_reference_yaml(model: &str) -> Option<serde_json::Value> {
    let text = match model {
        "llama3-8b" => include_str!("../data/llama3_8b.yaml"),
        "llama3-70b" => include_str!("../data/llama3_70b.yaml"),
        "llama3-405b" => include_str!("../data/llama3_405b.yaml"),
        "llama3-1t" => include_str!("../data/llama3_1t.yaml"),
        _ => return None,
    };
    crate::lenient::parse_yaml(text).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    #[test]
    fn editions_load_and_validate() {
        for id in KNOWN_EDITIONS {
            let e = Edition::load(id).unwrap();
            assert_eq!(e.id, id);
        }
        assert!(Edition::load("v3.0").is_ok());
        assert!(Edition::load("4.0").is_err());
        let e = Edition::load("3.0").unwrap();
        assert_eq!(e.closed_mpi_processes["llama3-70b"], 64);
        assert_eq!(e.runs("training"), Some(6));
        assert_eq!(e.au_threshold("retinanet"), Some(0.85));
        assert!(e.has_model("kv_cache", "llama3.1-8b"));
        let v1 = Edition::load("1.0").unwrap();
        assert_eq!(v1.layout, Layout::V1);
        assert_eq!(v1.runs("training"), Some(5));
        assert!(!v1.has_model("training", "retinanet"));
    }

    #[test]
    fn invalid_table_rejected() {
        let mut e = Edition::current();
        e.training_au_thresholds.insert("unet3d".into(), 90.0);
        assert!(e.validate().is_err());
        let mut e = Edition::current();
        e.accelerator_memory_gb.remove("mi355");
        assert!(e.validate().is_err());
    }

    #[test]
    fn reference_yamls_parse() {
        for m in ["llama3-8b", "llama3-70b", "llama3-405b", "llama3-1t"] {
            let v = checkpoint_reference_yaml(m).unwrap();
            assert!(crate::lenient::get_bool(&v, "checkpoint.fsync").unwrap());
        }
    }
}
