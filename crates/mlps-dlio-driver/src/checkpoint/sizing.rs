//! Per-rank checkpoint contents by DLIO's formula (dlio.md §6.1–6.3): rank topology, the layers
//! of each pipeline stage, the bytes of model and optimizer state, and the files they go to.

use super::model::LlmModel;
use super::spec::CheckpointSpec;

const GIB: f64 = (1u64 << 30) as f64;

/// Where rank `rank` sits in the TP × PP × DP grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankTopology {
    pub rank: u64,
    pub tp_rank: u64,
    pub pp_rank: u64,
    pub dp_rank: u64,
    pub mp_rank: u64,
    /// False only under ZeRO-0 for ranks beyond the first replica (they write nothing).
    pub checkpoints: bool,
}

/// What a file holds (for reports and tests; the bytes are raw, as DLIO v3 streams them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// All layers of the rank in one file (ZeRO-0/3).
    ModelStates,
    /// One layer index (ZeRO-1/2 with PP > 1, first replica only).
    Layer(u64),
    /// Optimizer state of the rank.
    OptimStates,
}

/// One file of one checkpoint, relative to `<folder>/global_epoch<E>_step<S>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFile {
    pub name: String,
    pub bytes: u64,
    pub kind: FileKind,
}

/// What one rank writes per checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankPlan {
    pub topology: RankTopology,
    pub model_bytes: u64,
    pub optimizer_bytes: u64,
    pub files: Vec<CheckpointFile>,
}

impl RankPlan {
    pub fn total_bytes(&self) -> u64 {
        self.model_bytes + self.optimizer_bytes
    }
}

impl CheckpointSpec {
    /// DLIO's rank grid: `tp = r mod TP`, `pp = (r / TP) mod PP`, `dp = r / MP`, `mp = r mod MP`.
    pub fn topology(&self, rank: u64) -> RankTopology {
        let s = &self.shape;
        let mp = s.model_parallelism();
        RankTopology {
            rank,
            tp_rank: rank % s.tensor_parallelism,
            pp_rank: (rank / s.tensor_parallelism) % s.pipeline_parallelism,
            dp_rank: rank / mp,
            mp_rank: rank % mp,
            checkpoints: s.zero_stage != 0 || rank < mp,
        }
    }

    /// Layer indices of pipeline stage `pp_rank`: transformer layers `1..=L` split as evenly as
    /// possible (the first `L mod PP` stages get one more), plus the embedding (0) on the first
    /// stage and lm_head (L+1) and final norm (L+2) on the last.
    pub fn stage_layers(&self, pp_rank: u64) -> Vec<u64> {
        let l = self.shape.num_layers;
        let pp = self.shape.pipeline_parallelism;
        let (n, rem) = (l / pp, l % pp);
        let (start, count) = if pp_rank < rem {
            (pp_rank * (n + 1) + 1, n + 1)
        } else {
            (rem * (n + 1) + (pp_rank - rem) * n + 1, n)
        };
        let mut layers = Vec::with_capacity(count as usize + 3);
        if pp_rank == 0 {
            layers.push(0);
        }
        layers.extend(start..start + count);
        if pp_rank == pp - 1 {
            layers.extend([l + 1, l + 2]);
        }
        layers
    }

    /// Model-state bytes of one layer index on one rank (DLIO's per-tensor integer divisions).
    pub fn layer_bytes(&self, layer: u64) -> u64 {
        let s = &self.shape;
        let (h, f, v, tp) = (
            s.hidden_size,
            s.ffn_hidden_size,
            s.vocab_size,
            s.tensor_parallelism,
        );
        let sf = if s.zero_stage == 3 {
            self.data_parallelism
        } else {
            1
        };
        let kv = (h / s.num_attention_heads) * s.num_kv_heads;
        let elements = if layer == 0 || layer == s.num_layers + 1 {
            h * v / tp / sf
        } else if layer == s.num_layers + 2 {
            h / sf
        } else {
            h / sf
                + h * (h + 2 * kv) / tp / sf
                + h * h / tp / sf
                + h / sf
                + 2 * f * h / tp / sf
                + f * h / tp / sf
        };
        elements * s.model_datatype.size_bytes()
    }

    /// Optimizer bytes of a checkpointing rank: groups `[m, 5h] × 3` with `m = P / (DP·MP)`
    /// (ZeRO > 0) or `P / MP` (ZeRO-0).
    pub fn optimizer_bytes(&self) -> u64 {
        let s = &self.shape;
        let mp = s.model_parallelism();
        let m = if s.zero_stage > 0 {
            s.num_parameters() / (self.data_parallelism * mp)
        } else {
            s.num_parameters() / mp
        };
        (3 * m + 15 * s.hidden_size) * s.optimizer_datatype.size_bytes()
    }

    /// The files and bytes rank `rank` writes per checkpoint (file names as DLIO v3, `.pt`).
    pub fn rank_plan(&self, rank: u64) -> RankPlan {
        let t = self.topology(rank);
        let s = &self.shape;
        let mut files = Vec::new();
        let mut model_bytes = 0;
        let mut optimizer_bytes = 0;
        if t.checkpoints {
            let holds_model = s.zero_stage == 0 || s.zero_stage == 3 || t.dp_rank == 0;
            if holds_model {
                let layers = self.stage_layers(t.pp_rank);
                if s.zero_stage == 0 || s.zero_stage == 3 {
                    let bytes: u64 = layers.iter().map(|&i| self.layer_bytes(i)).sum();
                    model_bytes = bytes;
                    files.push(CheckpointFile {
                        name: format!(
                            "zero_pp_rank_{}_mp_rank_{}_model_states.pt",
                            t.dp_rank, t.mp_rank
                        ),
                        bytes,
                        kind: FileKind::ModelStates,
                    });
                } else if s.pipeline_parallelism > 1 {
                    for layer in layers {
                        let bytes = self.layer_bytes(layer);
                        model_bytes += bytes;
                        files.push(CheckpointFile {
                            name: format!("layer_{layer}-model_{}_model_states.pt", t.mp_rank),
                            bytes,
                            kind: FileKind::Layer(layer),
                        });
                    }
                } else {
                    let bytes: u64 = layers.iter().map(|&i| self.layer_bytes(i)).sum();
                    model_bytes = bytes;
                    files.push(CheckpointFile {
                        name: format!("model_{}_model_states.pt", t.mp_rank),
                        bytes,
                        kind: FileKind::ModelStates,
                    });
                }
            }
            optimizer_bytes = self.optimizer_bytes();
            files.push(CheckpointFile {
                name: format!(
                    "zero_pp_rank_{}_mp_rank_{}_optim_states.pt",
                    t.dp_rank, t.mp_rank
                ),
                bytes: optimizer_bytes,
                kind: FileKind::OptimStates,
            });
        }
        RankPlan {
            topology: t,
            model_bytes,
            optimizer_bytes,
            files,
        }
    }

    /// `global_epoch<E>_step<S>` — checkpoint-only mode uses epoch 1 and steps 1..=count.
    pub fn step_dir_name(step: u64) -> String {
        format!("global_epoch1_step{step}")
    }
}

/// `checkpointing datasize`: what each rank and the whole job write per checkpoint, the space
/// CAP-01 requires, and mlpstorage's rules-table estimate for comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointDatasize {
    pub model: LlmModel,
    pub num_processes: u64,
    /// Bytes per rank per checkpoint (DLIO's formula: what this tool writes).
    pub per_rank_bytes: Vec<u64>,
    pub model_bytes: u64,
    pub optimizer_bytes: u64,
    /// Σ over ranks; DLIO's `checkpoint_size_GB` is this / 2^30.
    pub total_bytes: u64,
    pub files_per_checkpoint: u64,
    pub num_checkpoints_write: u64,
    /// CAP-01: `total_bytes × num_checkpoints_write` (every checkpoint stays on disk).
    pub required_bytes: u64,
    /// mlpstorage's `LLM_SIZE_BY_RANK` estimate per rank (GiB), mlpstorage.md §7.3.
    pub rules_per_rank_gib: Vec<f64>,
}

impl CheckpointDatasize {
    pub fn per_rank_gib(&self) -> Vec<f64> {
        self.per_rank_bytes
            .iter()
            .map(|&b| b as f64 / GIB)
            .collect()
    }
    pub fn total_gib(&self) -> f64 {
        self.total_bytes as f64 / GIB
    }
    pub fn model_gib(&self) -> f64 {
        self.model_bytes as f64 / GIB
    }
    pub fn optimizer_gib(&self) -> f64 {
        self.optimizer_bytes as f64 / GIB
    }
    pub fn rules_total_gib(&self) -> f64 {
        self.rules_per_rank_gib.iter().sum()
    }
}

/// Sizes every rank of `spec` (DLIO formula) and mlpstorage's table estimate.
pub fn datasize(spec: &CheckpointSpec) -> CheckpointDatasize {
    let mut per_rank_bytes = Vec::with_capacity(spec.num_processes as usize);
    let (mut model_bytes, mut optimizer_bytes, mut files) = (0u64, 0u64, 0u64);
    for rank in 0..spec.num_processes {
        let plan = spec.rank_plan(rank);
        model_bytes += plan.model_bytes;
        optimizer_bytes += plan.optimizer_bytes;
        files += plan.files.len() as u64;
        per_rank_bytes.push(plan.total_bytes());
    }
    let total_bytes = model_bytes + optimizer_bytes;
    CheckpointDatasize {
        model: spec.model,
        num_processes: spec.num_processes,
        per_rank_bytes,
        model_bytes,
        optimizer_bytes,
        total_bytes,
        files_per_checkpoint: files,
        num_checkpoints_write: spec.num_checkpoints_write,
        required_bytes: total_bytes.saturating_mul(spec.num_checkpoints_write),
        rules_per_rank_gib: rules_per_rank_gib(spec.model, spec.num_processes),
    }
}

/// mlpstorage §7.3: ZeRO-3 models split (model + optimizer) evenly; ZeRO-1 models split the
/// optimizer evenly and give the first DP instance (`r < GPUperDP`) `model / GPUperDP` more.
pub fn rules_per_rank_gib(model: LlmModel, num_processes: u64) -> Vec<f64> {
    let (model_gb, optimizer_gb) = model.rules_size_by_rank();
    let closed = model.closed_values();
    let np = num_processes.max(1) as f64;
    (0..num_processes)
        .map(|r| {
            if closed.zero_stage == 3 {
                (model_gb + optimizer_gb) / np
            } else {
                let extra = if r < closed.gpus_per_dp {
                    model_gb / closed.gpus_per_dp as f64
                } else {
                    0.0
                };
                optimizer_gb / np + extra
            }
        })
        .collect()
}
