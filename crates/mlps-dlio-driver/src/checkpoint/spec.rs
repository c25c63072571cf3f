//! [`CheckpointSpec`]: the effective checkpoint workload of one invocation — the upstream llama3
//! YAML, the tool-injected keys of mlpstorage (subset mode, counts, folder) and the user's
//! `--params` overrides folded into one typed value.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::error::{CheckpointError, Result};
use super::model::{DataType, LlmModel, ModelShape};

/// DLIO `checkpoint.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointMode {
    /// DP = processes / (TP·PP); every rank of every DP replica is present.
    Default,
    /// Fewer real processes than the full job: DP is given (`model.parallelism.data`) and only
    /// the first `num_processes` ranks of the full job write their shards.
    Subset,
}

impl CheckpointMode {
    pub fn name(self) -> &'static str {
        match self {
            CheckpointMode::Default => "default",
            CheckpointMode::Subset => "subset",
        }
    }
}

/// The effective checkpoint workload. Build it with [`CheckpointSpec::for_model`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSpec {
    pub model: LlmModel,
    pub shape: ModelShape,
    /// DLIO's `comm_size`: the ranks that run (and write) in this invocation.
    pub num_processes: u64,
    pub mode: CheckpointMode,
    /// DP: computed in default mode, `model.parallelism.data` in subset mode.
    pub data_parallelism: u64,
    pub num_checkpoints_write: u64,
    pub num_checkpoints_read: u64,
    /// Untimed sleep before each save and load, seconds (5 in the YAMLs).
    pub time_between_checkpoints: f64,
    /// DLIO `checkpoint.rank_sync`: barrier after each save/load before rank 0 stops its clock.
    pub rank_sync: bool,
    /// `checkpoint.fsync` as configured (recorded for rule 4.3.2; the writer always fsyncs once
    /// per file at close, as DLIO v3's streaming writer does).
    pub fsync: bool,
    /// DLIO `checkpoint.checkpoint_folder` (mlpstorage: `<--checkpoint-folder>/<model>`).
    pub checkpoint_folder: PathBuf,
    /// Flat dotted overrides in the order applied: user `--params` first, then tool-injected keys
    /// (what mlpstorage stores as `override_parameters`).
    pub override_parameters: Vec<(String, String)>,
}

impl CheckpointSpec {
    /// The upstream YAML of `model` run with `num_processes` ranks, plus `overrides` (dotted
    /// DLIO keys without the `workload.` prefix, e.g. `model.num_layers=2`). As mlpstorage does,
    /// a run with fewer processes than the model's CLOSED count becomes `checkpoint.mode=subset`
    /// with `model.parallelism.data = ClosedGPUs / (TP·PP)`, unless the user set those keys.
    pub fn for_model<I, K, V>(model: LlmModel, num_processes: u64, overrides: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        if num_processes == 0 {
            return Err(CheckpointError::Topology(
                "--num-processes must be at least 1".to_string(),
            ));
        }
        let mut spec = CheckpointSpec {
            model,
            shape: model.shape(),
            num_processes,
            mode: CheckpointMode::Default,
            data_parallelism: 0,
            num_checkpoints_write: 10,
            num_checkpoints_read: 10,
            time_between_checkpoints: 5.0,
            rank_sync: false,
            fsync: true,
            checkpoint_folder: PathBuf::from(format!("checkpoints/{}", model.dlio_model_name())),
            override_parameters: Vec::new(),
        };
        let mut explicit_mode = None;
        let mut explicit_dp = None;
        for (key, value) in overrides {
            let (key, value) = (key.as_ref().trim(), value.as_ref().trim());
            let key = key.strip_prefix("workload.").unwrap_or(key);
            spec.apply(key, value, &mut explicit_mode, &mut explicit_dp)?;
            spec.override_parameters
                .push((key.to_string(), value.to_string()));
        }
        let closed = model.closed_values();
        let mode = match explicit_mode {
            Some(m) => m,
            None if num_processes < closed.closed_processes => {
                spec.override_parameters
                    .push(("checkpoint.mode".into(), "subset".into()));
                CheckpointMode::Subset
            }
            None => CheckpointMode::Default,
        };
        spec.mode = mode;
        let mp = spec.shape.model_parallelism();
        spec.data_parallelism = match (mode, explicit_dp) {
            (CheckpointMode::Default, _) => {
                if mp == 0 || !num_processes.is_multiple_of(mp) {
                    return Err(CheckpointError::Topology(format!(
                        "{num_processes} processes is not a multiple of TP×PP = {mp}; use a multiple of {mp} or checkpoint.mode=subset"
                    )));
                }
                num_processes / mp
            }
            (CheckpointMode::Subset, Some(dp)) => dp,
            (CheckpointMode::Subset, None) => {
                // dlio.md §1.9: `model.parallelism.data = ClosedGPUs / (TP·PP)`, the DP of the
                // full job whose first ranks this run stands in for.
                let dp = (closed.closed_processes / mp).max(1);
                spec.override_parameters
                    .push(("model.parallelism.data".into(), dp.to_string()));
                dp
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Sets the effective folder as mlpstorage does: `<folder>/<model>` (e.g.
    /// `/mnt/ckpt/llama3-8b`), recorded as the tool-injected `checkpoint.checkpoint_folder`.
    pub fn with_checkpoint_folder(mut self, folder: &Path) -> Self {
        let effective = effective_checkpoint_folder(folder, self.model);
        self.override_parameters
            .retain(|(k, _)| k != "checkpoint.checkpoint_folder");
        self.override_parameters.push((
            "checkpoint.checkpoint_folder".into(),
            effective.display().to_string(),
        ));
        self.checkpoint_folder = effective;
        self
    }

    fn apply(
        &mut self,
        key: &str,
        value: &str,
        explicit_mode: &mut Option<CheckpointMode>,
        explicit_dp: &mut Option<u64>,
    ) -> Result<()> {
        let int = || -> Result<u64> {
            value.parse::<u64>().map_err(|_| {
                CheckpointError::bad_param(key, value, "expected a non-negative integer")
            })
        };
        let positive = || -> Result<u64> {
            match int()? {
                0 => Err(CheckpointError::bad_param(key, value, "must be at least 1")),
                n => Ok(n),
            }
        };
        let boolean = || -> Result<bool> {
            match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(CheckpointError::bad_param(
                    key,
                    value,
                    "expected true or false",
                )),
            }
        };
        let dtype = || -> Result<DataType> {
            value
                .parse::<DataType>()
                .map_err(|e| CheckpointError::bad_param(key, value, e))
        };
        let s = &mut self.shape;
        match key {
            "model.num_layers" => s.num_layers = positive()?,
            "model.model_datatype" => s.model_datatype = dtype()?,
            "model.optimizer_datatype" => s.optimizer_datatype = dtype()?,
            "model.parallelism.tensor" => s.tensor_parallelism = positive()?,
            "model.parallelism.pipeline" => s.pipeline_parallelism = positive()?,
            "model.parallelism.zero_stage" => {
                s.zero_stage = match int()? {
                    z @ 0..=3 => z as u32,
                    _ => return Err(CheckpointError::bad_param(key, value, "ZeRO stage is 0..3")),
                }
            }
            "model.parallelism.data" => *explicit_dp = Some(positive()?),
            "model.transformer.vocab_size" => s.vocab_size = positive()?,
            "model.transformer.hidden_size" => s.hidden_size = positive()?,
            "model.transformer.ffn_hidden_size" => s.ffn_hidden_size = positive()?,
            "model.transformer.num_attention_heads" => s.num_attention_heads = positive()?,
            "model.transformer.num_kv_heads" => s.num_kv_heads = positive()?,
            "checkpoint.checkpoint_folder" => self.checkpoint_folder = PathBuf::from(value),
            "checkpoint.num_checkpoints_write" => self.num_checkpoints_write = int()?,
            "checkpoint.num_checkpoints_read" => self.num_checkpoints_read = int()?,
            "checkpoint.time_between_checkpoints" => {
                let t: f64 = value.parse().map_err(|_| {
                    CheckpointError::bad_param(key, value, "expected seconds (a number)")
                })?;
                // DLIO's default -1 means "no sleep".
                self.time_between_checkpoints = if t.is_finite() { t.max(0.0) } else { 0.0 };
            }
            "checkpoint.rank_sync" => self.rank_sync = boolean()?,
            "checkpoint.fsync" => self.fsync = boolean()?,
            "checkpoint.mode" => {
                *explicit_mode = Some(match value {
                    "default" => CheckpointMode::Default,
                    "subset" => CheckpointMode::Subset,
                    _ => {
                        return Err(CheckpointError::bad_param(
                            key,
                            value,
                            "expected `default` or `subset`",
                        ));
                    }
                })
            }
            _ => {
                return Err(CheckpointError::bad_param(
                    key,
                    value,
                    "unknown checkpointing parameter; known: model.num_layers, model.model_datatype, \
                     model.optimizer_datatype, model.parallelism.{tensor,pipeline,zero_stage,data}, \
                     model.transformer.{vocab_size,hidden_size,ffn_hidden_size,num_attention_heads,num_kv_heads}, \
                     checkpoint.{checkpoint_folder,num_checkpoints_write,num_checkpoints_read,\
                     time_between_checkpoints,rank_sync,fsync,mode}",
                ));
            }
        }
        Ok(())
    }

    /// DLIO `validate()` for the checkpoint keys.
    fn validate(&self) -> Result<()> {
        let s = &self.shape;
        let mp = s.model_parallelism();
        if s.pipeline_parallelism > 1 && s.zero_stage == 3 {
            return Err(CheckpointError::Topology(
                "pipeline parallelism > 1 cannot be combined with ZeRO stage 3".into(),
            ));
        }
        if s.num_attention_heads > s.hidden_size {
            return Err(CheckpointError::Topology(format!(
                "num_attention_heads {} exceeds hidden_size {}",
                s.num_attention_heads, s.hidden_size
            )));
        }
        if self.mode == CheckpointMode::Subset && self.data_parallelism * mp < self.num_processes {
            return Err(CheckpointError::Topology(format!(
                "subset mode needs model.parallelism.data × TP × PP ≥ processes, got {} × {mp} < {}",
                self.data_parallelism, self.num_processes
            )));
        }
        if self.num_checkpoints_write > 0 && self.num_checkpoints_read > self.num_checkpoints_write
        {
            return Err(CheckpointError::Topology(format!(
                "num_checkpoints_read ({}) must not exceed num_checkpoints_write ({})",
                self.num_checkpoints_read, self.num_checkpoints_write
            )));
        }
        Ok(())
    }

    /// The effective nested DLIO config (metadata `parameters`): the YAML with every override
    /// folded in, in the YAML's key order.
    pub fn parameters_json(&self) -> Value {
        let s = &self.shape;
        let mut parallelism = Map::new();
        parallelism.insert("pipeline".into(), json!(s.pipeline_parallelism));
        parallelism.insert("tensor".into(), json!(s.tensor_parallelism));
        parallelism.insert("zero_stage".into(), json!(s.zero_stage));
        if self.mode == CheckpointMode::Subset {
            parallelism.insert("data".into(), json!(self.data_parallelism));
        }
        let mut checkpoint = Map::new();
        checkpoint.insert(
            "checkpoint_folder".into(),
            json!(self.checkpoint_folder.display().to_string()),
        );
        checkpoint.insert(
            "time_between_checkpoints".into(),
            number(self.time_between_checkpoints),
        );
        checkpoint.insert(
            "num_checkpoints_write".into(),
            json!(self.num_checkpoints_write),
        );
        checkpoint.insert(
            "num_checkpoints_read".into(),
            json!(self.num_checkpoints_read),
        );
        checkpoint.insert("fsync".into(), json!(self.fsync));
        if self.mode == CheckpointMode::Subset {
            checkpoint.insert("mode".into(), json!("subset"));
        }
        if self.rank_sync {
            checkpoint.insert("rank_sync".into(), json!(true));
        }
        json!({
            "model": {
                "name": self.model.dlio_model_name(),
                "type": "transformer",
                "num_layers": s.num_layers,
                "model_datatype": s.model_datatype.name(),
                "optimizer_datatype": s.optimizer_datatype.name(),
                "parallelism": Value::Object(parallelism),
                "transformer": {
                    "vocab_size": s.vocab_size,
                    "hidden_size": s.hidden_size,
                    "ffn_hidden_size": s.ffn_hidden_size,
                    "num_attention_heads": s.num_attention_heads,
                    "num_kv_heads": s.num_kv_heads,
                },
            },
            "framework": "pytorch",
            "workflow": {"generate_data": false, "train": false, "checkpoint": true},
            "checkpoint": Value::Object(checkpoint),
        })
    }
}

/// mlpstorage's effective DLIO folder: `<folder>/<model>`.
pub fn effective_checkpoint_folder(folder: &Path, model: LlmModel) -> PathBuf {
    folder.join(model.name())
}

/// The checks mlpstorage applies to `-ncw` / `-ncr` before anything runs (exit 2 on failure),
/// with its exact messages. `closed` is true for the `closed` mode positional.
pub fn validate_checkpoint_counts(closed: bool, write: i64, read: i64) -> Result<()> {
    if write < 0 || read < 0 {
        return Err(CheckpointError::NegativeCheckpointCount);
    }
    if closed {
        for (which, got) in [("write", write), ("read", read)] {
            if got != 10 && got != 0 {
                return Err(CheckpointError::ClosedCheckpointCount { which, got });
            }
        }
        if write == 0 && read == 0 {
            return Err(CheckpointError::ClosedBothZero);
        }
    }
    Ok(())
}

/// The `--checkpoint-subset` pre-flight gate (Rules 4.3.5): legal only for llama3-8b at exactly
/// 8 processes. The rules crate's run checker gives the same case the INVALID verdict.
pub fn check_subset_flag(model: LlmModel, num_processes: u64) -> Result<()> {
    if model.subset_allowed(num_processes) {
        Ok(())
    } else {
        Err(CheckpointError::SubsetNotAllowed {
            model: model.name().to_string(),
            num_processes,
        })
    }
}

/// Seconds as a JSON number, written as an integer when whole (the YAML says `5`, not `5.0`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}
