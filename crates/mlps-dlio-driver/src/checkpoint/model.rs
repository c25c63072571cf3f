//! The four llama3 checkpoint models: their DLIO shapes (from the upstream workload YAMLs
//! `configs/dlio/workload/llama3_<size>.yaml`) and the rules-side constants of mlpstorage.

use std::fmt;
use std::str::FromStr;

use super::error::CheckpointError;

/// A checkpointing model name as the CLI spells it (`llama3-8b` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LlmModel {
    Llama3_8b,
    Llama3_70b,
    Llama3_405b,
    Llama3_1t,
}

/// mlpstorage's `LLM_ALLOWED_VALUES[model]` = (MinProcs, ZeroLevel, GPUperDP, ClosedGPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedValues {
    pub min_processes: u64,
    pub zero_stage: u32,
    /// TP × PP: the ranks of one data-parallel instance.
    pub gpus_per_dp: u64,
    /// The process count a CLOSED run must use (Rules 4.6.1).
    pub closed_processes: u64,
}

impl LlmModel {
    pub const ALL: [LlmModel; 4] = [
        LlmModel::Llama3_8b,
        LlmModel::Llama3_70b,
        LlmModel::Llama3_405b,
        LlmModel::Llama3_1t,
    ];

    /// The CLI / results-tree name (`llama3-8b`).
    pub fn name(self) -> &'static str {
        match self {
            LlmModel::Llama3_8b => "llama3-8b",
            LlmModel::Llama3_70b => "llama3-70b",
            LlmModel::Llama3_405b => "llama3-405b",
            LlmModel::Llama3_1t => "llama3-1t",
        }
    }

    /// The DLIO workload config name (`llama3_8b`, the YAML stem).
    pub fn workload_name(self) -> &'static str {
        match self {
            LlmModel::Llama3_8b => "llama3_8b",
            LlmModel::Llama3_70b => "llama3_70b",
            LlmModel::Llama3_405b => "llama3_405b",
            LlmModel::Llama3_1t => "llama3_1t",
        }
    }

    /// `model.name` inside the YAML (`llama_8b`).
    pub fn dlio_model_name(self) -> &'static str {
        match self {
            LlmModel::Llama3_8b => "llama_8b",
            LlmModel::Llama3_70b => "llama_70b",
            LlmModel::Llama3_405b => "llama_405b",
            LlmModel::Llama3_1t => "llama_1t",
        }
    }

    /// The transformer shape and parallelism of the upstream YAML.
    pub fn shape(self) -> ModelShape {
        let (num_layers, hidden, ffn, heads, kv_heads, tp, pp, zero) = match self {
            LlmModel::Llama3_8b => (32, 4096, 14336, 32, 8, 1, 1, 3),
            LlmModel::Llama3_70b => (80, 8192, 28672, 128, 8, 8, 1, 3),
            LlmModel::Llama3_405b => (126, 16384, 53248, 128, 8, 8, 32, 1),
            LlmModel::Llama3_1t => (128, 25872, 98304, 192, 32, 8, 64, 1),
        };
        ModelShape {
            num_layers,
            hidden_size: hidden,
            ffn_hidden_size: ffn,
            num_attention_heads: heads,
            num_kv_heads: kv_heads,
            vocab_size: 128_256,
            tensor_parallelism: tp,
            pipeline_parallelism: pp,
            zero_stage: zero,
            model_datatype: DataType::Fp16,
            optimizer_datatype: DataType::Fp32,
        }
    }

    /// mlpstorage `LLM_ALLOWED_VALUES`.
    pub fn closed_values(self) -> ClosedValues {
        let (min_processes, zero_stage, gpus_per_dp, closed_processes) = match self {
            LlmModel::Llama3_8b => (8, 3, 8, 8),
            LlmModel::Llama3_70b => (8, 3, 8, 64),
            LlmModel::Llama3_405b => (8, 1, 256, 512),
            LlmModel::Llama3_1t => (8, 1, 512, 1024),
        };
        ClosedValues {
            min_processes,
            zero_stage,
            gpus_per_dp,
            closed_processes,
        }
    }

    /// mlpstorage `LLM_SIZE_BY_RANK[model]` = (model GB, optimizer GB), binary units.
    pub fn rules_size_by_rank(self) -> (f64, f64) {
        match self {
            LlmModel::Llama3_8b => (15.0, 90.0),
            LlmModel::Llama3_70b => (130.0, 781.0),
            LlmModel::Llama3_405b => (755.0, 4533.0),
            LlmModel::Llama3_1t => (2571.0, 15426.0),
        }
    }

    /// The checkpoint size the rules checker (4.3.4) compares accelerator memory against:
    /// 105 / 912 / 5290 / 18000 GB. These are the rules' table values; the bytes DLIO (and
    /// this crate) actually writes come from [`super::sizing`] (104.7 / 911.2 / 5,292 / 15,427 GiB).
    pub fn rules_checkpoint_size_gb(self) -> f64 {
        match self {
            LlmModel::Llama3_8b => 105.0,
            LlmModel::Llama3_70b => 912.0,
            LlmModel::Llama3_405b => 5290.0,
            LlmModel::Llama3_1t => 18000.0,
        }
    }

    /// Whether `--checkpoint-subset` is legal (Rules 4.3.5): llama3-8b at exactly 8 processes.
    pub fn subset_allowed(self, num_processes: u64) -> bool {
        self == LlmModel::Llama3_8b && num_processes == 8
    }
}

impl fmt::Display for LlmModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LlmModel {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LlmModel::ALL
            .into_iter()
            .find(|m| m.name() == s || m.workload_name() == s)
            .ok_or_else(|| CheckpointError::InvalidModel(s.to_string()))
    }
}

/// A tensor element type of the DLIO config (`model_datatype`, `optimizer_datatype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Int8,
    Uint8,
    Fp16,
    Bf16,
    Fp32,
    Fp64,
}

impl DataType {
    pub fn size_bytes(self) -> u64 {
        match self {
            DataType::Int8 | DataType::Uint8 => 1,
            DataType::Fp16 | DataType::Bf16 => 2,
            DataType::Fp32 => 4,
            DataType::Fp64 => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Int8 => "int8",
            DataType::Uint8 => "uint8",
            DataType::Fp16 => "fp16",
            DataType::Bf16 => "bf16",
            DataType::Fp32 => "fp32",
            DataType::Fp64 => "fp64",
        }
    }
}

impl FromStr for DataType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "int8" => DataType::Int8,
            "uint8" => DataType::Uint8,
            "fp16" => DataType::Fp16,
            "bf16" => DataType::Bf16,
            "fp32" => DataType::Fp32,
            "fp64" => DataType::Fp64,
            other => {
                return Err(format!(
                    "unsupported datatype `{other}`: use int8, uint8, fp16, bf16, fp32 or fp64"
                ));
            }
        })
    }
}

/// DLIO's `model.*` section for `type: transformer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub num_layers: u64,
    pub hidden_size: u64,
    pub ffn_hidden_size: u64,
    pub num_attention_heads: u64,
    pub num_kv_heads: u64,
    pub vocab_size: u64,
    pub tensor_parallelism: u64,
    pub pipeline_parallelism: u64,
    pub zero_stage: u32,
    pub model_datatype: DataType,
    pub optimizer_datatype: DataType,
}

impl ModelShape {
    /// TP × PP.
    pub fn model_parallelism(&self) -> u64 {
        self.tensor_parallelism * self.pipeline_parallelism
    }

    /// DLIO's total parameter count: embedding + lm_head + L × (input norm, QKV with grouped KV
    /// heads, dense, post norm, gated MLP in, MLP out) + final norm.
    pub fn num_parameters(&self) -> u64 {
        let h = self.hidden_size;
        let f = self.ffn_hidden_size;
        let kv = (h / self.num_attention_heads) * self.num_kv_heads;
        let per_layer = h + h * (h + 2 * kv) + h * h + h + 2 * f * h + f * h;
        2 * self.vocab_size * h + self.num_layers * per_layer + h
    }
}
