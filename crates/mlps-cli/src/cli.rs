//! The command grammar of mlpstorage v3.0 (mlpstorage.md §1.1–1.17) as a clap builder tree.
//!
//! Conventions that the rest of the CLI relies on:
//! - every option's clap id is its argparse *dest* (`results_dir`, `num_accelerators`, …), which is
//!   also the key used by `--config-file`, the per-user config and the metadata `args`;
//! - no option is marked required in clap: required-ness is checked after option layering
//!   (`layering.rs`), so a value may come from a config file or the environment;
//! - argparse-style multi-letter short options (`-rd`, `-sn`, `-np`, …) are rewritten to their
//!   long form by [`rewrite_short_aliases`] before clap sees the arguments;
//! - the choices of models / accelerators / indexes depend on the mode (`edition.rs`).

use clap::{Arg, ArgAction, Command, value_parser};
use mlps_rules::results_tree::Mode;

use crate::edition;

/// Multi-letter short options of the reference and the long option each stands for.
pub const SHORT_ALIASES: &[(&str, &str)] = &[
    ("-rd", "--results-dir"),
    ("-sn", "--systemname"),
    ("-ma", "--max-accelerators"),
    ("-np", "--num-processes"),
    ("-na", "--num-accelerators"),
    ("-at", "--accelerator-type"),
    ("-cm", "--client-host-memory-in-gb"),
    ("-nc", "--num-client-hosts"),
    ("-dd", "--data-dir"),
    ("-et", "--exec-type"),
    ("-dp", "--dlio-bin-path"),
    ("-cf", "--checkpoint-folder"),
    ("-ncr", "--num-checkpoints-read"),
    ("-ncw", "--num-checkpoints-write"),
    ("-aip", "--allow-invalid-params"),
    ("-nu", "--num-users"),
];

/// Rewrites `-rd X` / `-rd=X` (and the other [`SHORT_ALIASES`]) to long options; stops at `--`.
pub fn rewrite_short_aliases(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for a in args {
        if rest || !a.starts_with('-') || a.starts_with("--") {
            rest |= a == "--";
            out.push(a.clone());
            continue;
        }
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (a.as_str(), None),
        };
        match SHORT_ALIASES.iter().find(|(s, _)| *s == flag) {
            Some((_, long)) => out.push(match value {
                Some(v) => format!("{long}={v}"),
                None => long.to_string(),
            }),
            None => out.push(a.clone()),
        }
    }
    out
}

fn short_alias_of(long: &str) -> Option<&'static str> {
    SHORT_ALIASES
        .iter()
        .find(|(_, l)| l.strip_prefix("--") == Some(long))
        .map(|(s, _)| *s)
}

/// `--long/-xy` as the reference's error messages name an option (`--results-dir/-rd`).
pub fn display_name(arg: &Arg) -> String {
    let long = arg.get_long().unwrap_or(arg.get_id().as_str());
    if let Some(s) = short_alias_of(long) {
        format!("--{long}/{s}")
    } else if let Some(c) = arg.get_short() {
        format!("--{long}/-{c}")
    } else {
        format!("--{long}")
    }
}

// ----- argument constructors -------------------------------------------------------------

fn opt(id: &'static str, long: &'static str, help: &'static str) -> Arg {
    Arg::new(id).long(long).help(help).action(ArgAction::Set)
}

/// Names the multi-letter short form (`-rd`, …) at the start of each option's help.
fn decorate(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        let alias = a.get_long().and_then(short_alias_of);
        match (alias, a.get_help().map(|h| h.to_string())) {
            (Some(s), Some(h)) => a.help(format!("[{s}] {h}")),
            _ => a,
        }
    })
    // argparse semantics: a repeated option's last value wins.
    .args_override_self(true)
    .mut_subcommands(decorate)
}

fn flag(id: &'static str, long: &'static str, help: &'static str) -> Arg {
    opt(id, long, help).action(ArgAction::SetTrue)
}

fn int(id: &'static str, long: &'static str, help: &'static str) -> Arg {
    opt(id, long, help)
        .value_parser(value_parser!(i64))
        .value_name("N")
}

fn float(id: &'static str, long: &'static str, help: &'static str) -> Arg {
    opt(id, long, help)
        .value_parser(value_parser!(f64))
        .value_name("X")
}

fn choice(
    id: &'static str,
    long: &'static str,
    help: &'static str,
    choices: &'static [&'static str],
) -> Arg {
    opt(id, long, help).value_parser(choices.to_vec())
}

fn list(id: &'static str, long: &'static str, help: &'static str) -> Arg {
    opt(id, long, help).num_args(1..).action(ArgAction::Append)
}

fn protocol() -> Arg {
    Arg::new("data_access_protocol")
        .value_name("file|object")
        .value_parser(["file", "object"])
        .help("storage protocol: file or object")
}

/// Options on every benchmark command and most utilities (CORE_STD).
fn core_std() -> Vec<Arg> {
    vec![
        opt(
            "results_dir",
            "results-dir",
            "results root (must be `init`-ed); layered",
        )
        .value_name("DIR"),
        opt(
            "systemname",
            "systemname",
            "system-under-test name; layered",
        )
        .value_name("NAME"),
        opt(
            "config_file",
            "config-file",
            "YAML mapping of option names to values",
        )
        .short('c')
        .value_name("PATH"),
        flag("debug", "debug", "debug logging"),
        flag("verbose", "verbose", "more user-facing output"),
        opt(
            "stream_log_level",
            "stream-log-level",
            "console log threshold",
        )
        .default_value("INFO")
        .value_parser(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
        flag("quiet", "quiet", "suppress the Run Configuration table"),
        choice(
            "color",
            "color",
            "colour the level tag",
            &["auto", "always", "never"],
        )
        .default_value("auto"),
        flag(
            "dry_run",
            "dry-run",
            "resolve everything, print the plan, write nothing",
        )
        .alias("what-if"),
        opt(
            "verify_lockfile",
            "verify-lockfile",
            "validate installed packages against a lockfile first",
        )
        .value_name("PATH"),
        flag(
            "skip_validation",
            "skip-validation",
            "skip the environment preflight",
        ),
        flag(
            "skip_ssh_check",
            "skip-ssh-check",
            "skip only the SSH preflight",
        ),
        flag(
            "skip_fs_separation_gate",
            "skip-fs-separation-gate",
            "CAP-03 probe still runs but does not abort",
        ),
    ]
}

/// OPEN_STD: open and whatif only.
fn open_std(mode: Mode) -> Vec<Arg> {
    if mode == Mode::Closed {
        return vec![];
    }
    vec![
        int("loops", "loops", "run the benchmark N times").default_value("1"),
        flag(
            "allow_invalid_params",
            "allow-invalid-params",
            "do not abort when verification is INVALID",
        ),
    ]
}

fn mpi_args(default_bin: &'static str) -> Vec<Arg> {
    vec![
        choice("mpi_bin", "mpi-bin", "MPI launcher", &["mpirun", "mpiexec"])
            .default_value(default_bin),
        choice(
            "mpi_btl",
            "mpi-btl",
            "single-host byte transport",
            &["auto", "vader", "tcp"],
        )
        .default_value("auto"),
        flag("oversubscribe", "oversubscribe", "pass --oversubscribe"),
        flag(
            "allow_run_as_root",
            "allow-run-as-root",
            "pass --allow-run-as-root",
        ),
        opt(
            "mpi_params",
            "mpi-params",
            "raw launcher flags (repeatable; shlex-split)",
        )
        .action(ArgAction::Append)
        .allow_hyphen_values(true)
        .value_name("STR"),
        float(
            "rank_stall_timeout",
            "rank-stall-timeout",
            "seconds without a heartbeat before a rank counts as hung and the job is stopped",
        )
        .default_value("20"),
        float(
            "rank_progress_timeout",
            "rank-progress-timeout",
            "seconds without I/O or steps on any rank before the job is stopped (0: off)",
        )
        .default_value("300"),
    ]
}

fn timeseries(mode: Mode) -> Vec<Arg> {
    if mode == Mode::Closed {
        return vec![];
    }
    vec![
        float(
            "timeseries_interval",
            "timeseries-interval",
            "seconds between samples",
        )
        .default_value("10.0"),
        flag(
            "skip_timeseries",
            "skip-timeseries",
            "do not collect time series",
        ),
        int(
            "max_timeseries_samples",
            "max-timeseries-samples",
            "samples kept per host",
        )
        .default_value("3600"),
    ]
}

fn hosts(with_short: bool) -> Arg {
    let a = list(
        "hosts",
        "hosts",
        "client hosts: `h1 h2`, `h1,h2`, host:slots",
    )
    .default_value("127.0.0.1")
    .value_name("HOST");
    if with_short { a.short('s') } else { a }
}

fn exec_type() -> Arg {
    choice(
        "exec_type",
        "exec-type",
        "how ranks are launched",
        &["mpi", "docker"],
    )
    .default_value("mpi")
}

fn params() -> Arg {
    list(
        "params",
        "params",
        "workload overrides KEY=VALUE (repeatable)",
    )
    .short('p')
    .alias("param")
    .value_name("KEY=VALUE")
}

fn dlio_bin_path() -> Arg {
    opt(
        "dlio_bin_path",
        "dlio-bin-path",
        "directory or path of dlio_benchmark",
    )
    .value_name("PATH")
}

fn o_direct() -> Arg {
    flag(
        "o_direct",
        "o-direct",
        "route I/O via O_DIRECT (requires file)",
    )
}

fn client_memory() -> Arg {
    float(
        "client_host_memory_in_gb",
        "client-host-memory-in-gb",
        "RAM per client host in GB",
    )
    .value_name("GB")
}

fn accelerator(mode: Mode) -> Arg {
    choice(
        "accelerator_type",
        "accelerator-type",
        "emulated accelerator",
        edition::accelerators(mode),
    )
}

fn data_dir() -> Arg {
    opt(
        "data_dir",
        "data-dir",
        "dataset directory (object: key prefix); layered",
    )
    .value_name("DIR")
}

fn leaf(name: &'static str, about: &'static str, groups: Vec<Vec<Arg>>) -> Command {
    let mut c = Command::new(name).about(about);
    for g in groups {
        c = c.args(g);
    }
    c
}

// ----- benchmarks ------------------------------------------------------------------------

fn training_cmds(mode: Mode) -> Vec<Command> {
    let common = || {
        let mut v = vec![hosts(true), exec_type(), dlio_bin_path(), params()];
        v.extend(mpi_args("mpirun"));
        v.extend(core_std());
        v.extend(open_std(mode));
        v
    };
    vec![
        leaf(
            "datasize",
            "compute the minimum dataset for a run",
            vec![
                vec![
                    int(
                        "max_accelerators",
                        "max-accelerators",
                        "most accelerators you will run [required]",
                    ),
                    accelerator(mode).help("emulated accelerator [required]"),
                    client_memory().help("RAM per client host in GB [required]"),
                    int(
                        "num_client_hosts",
                        "num-client-hosts",
                        "client hosts (default: number of --hosts)",
                    ),
                    data_dir(),
                ],
                common(),
            ],
        ),
        leaf(
            "datagen",
            "generate the dataset",
            vec![
                vec![
                    protocol(),
                    int(
                        "num_processes",
                        "num-processes",
                        "generator ranks [required]",
                    ),
                    data_dir().help("dataset directory [required for file]"),
                    o_direct(),
                ],
                common(),
            ],
        ),
        leaf(
            "run",
            "run the training workload",
            vec![
                vec![
                    protocol(),
                    int(
                        "num_accelerators",
                        "num-accelerators",
                        "emulated accelerators [required]",
                    ),
                    accelerator(mode).help("emulated accelerator [required]"),
                    client_memory().help("RAM per client host in GB [required]"),
                    int(
                        "num_client_hosts",
                        "num-client-hosts",
                        "client hosts (default: number of --hosts)",
                    ),
                    data_dir().help("dataset directory [required for file]"),
                    o_direct(),
                    opt(
                        "drop_caches_timeout_seconds",
                        "drop-caches-timeout-seconds",
                        "DLIO_DROP_CACHES_TIMEOUT (>= 1)",
                    )
                    .value_parser(value_parser!(i64).range(1..))
                    .value_name("N"),
                ],
                common(),
                timeseries(mode),
            ],
        ),
        leaf(
            "configview",
            "print the final workload command and config",
            vec![
                vec![
                    protocol(),
                    int(
                        "num_accelerators",
                        "num-accelerators",
                        "emulated accelerators [required]",
                    ),
                    accelerator(mode).help("emulated accelerator [required]"),
                    client_memory().help("RAM per client host in GB [required]"),
                    int(
                        "num_client_hosts",
                        "num-client-hosts",
                        "client hosts (default: number of --hosts)",
                    ),
                    data_dir(),
                    o_direct(),
                ],
                common(),
            ],
        ),
    ]
}

/// Which part of the tree to build in full: the positional path of the invocation. Parts off the
/// path are built as name-only stubs (enough for `next:` and help listings), which keeps start-up
/// fast; `None` builds everything.
type Focus<'a> = Option<&'a [&'a str]>;

fn focused(focus: Focus, name: &str) -> bool {
    focus.is_none_or(|f| f.first() == Some(&name))
}

fn rest<'a>(focus: Focus<'a>) -> Focus<'a> {
    focus.map(|f| if f.is_empty() { f } else { &f[1..] })
}

fn training(mode: Mode, focus: Focus) -> Command {
    let mut c = Command::new("training").about("DLIO training workloads (model first)");
    for m in edition::training_models(mode) {
        let model = Command::new(*m).about("training model");
        c = c.subcommand(if focused(focus, m) {
            model.subcommands(training_cmds(mode))
        } else {
            model
        });
    }
    c
}

fn checkpointing(mode: Mode) -> Command {
    let base = |cmd: &'static str| {
        let mut v = vec![
            choice(
                "model",
                "model",
                "LLM [required]",
                edition::CHECKPOINT_MODELS,
            )
            .short('m'),
            int("num_processes", "num-processes", "ranks [required]"),
            client_memory().help("RAM per client host in GB [required]"),
            int(
                "num_checkpoints_read",
                "num-checkpoints-read",
                "checkpoints to read",
            )
            .default_value("10"),
            int(
                "num_checkpoints_write",
                "num-checkpoints-write",
                "checkpoints to write",
            )
            .default_value("10"),
            hosts(true),
            exec_type(),
            dlio_bin_path(),
        ];
        if cmd != "datasize" {
            v.push(protocol());
            v.push(accelerator(mode).help("emulated accelerator [required]"));
            v.push(o_direct());
        }
        if cmd == "run" {
            v.push(
                opt(
                    "checkpoint_folder",
                    "checkpoint-folder",
                    "checkpoint path or URI [required]; layered",
                )
                .value_name("PATH"),
            );
            v.push(flag(
                "checkpoint_subset",
                "checkpoint-subset",
                "declare a subset run (llama3-8b at 8 processes)",
            ));
        }
        if mode != Mode::Closed {
            v.push(params());
        }
        v.extend(mpi_args("mpirun"));
        v.extend(core_std());
        v.extend(open_std(mode));
        if cmd == "run" {
            v.extend(timeseries(mode));
        }
        v
    };
    Command::new("checkpointing")
        .about("DLIO checkpoint write/read workloads (--model/-m)")
        .subcommand(leaf(
            "datasize",
            "checkpoint sizes per rank",
            vec![base("datasize")],
        ))
        .subcommand(leaf("run", "write/read checkpoints", vec![base("run")]))
        .subcommand(leaf(
            "configview",
            "print the final workload command and config",
            vec![base("configview")],
        ))
}

fn vectordb(mode: Mode) -> Command {
    let common = |cmd: &'static str| {
        let mut v = vec![
            choice(
                "vdb_engine",
                "vdb-engine",
                "vector database engine",
                &["milvus"],
            )
            .default_value("milvus"),
            choice(
                "vdb_index",
                "vdb-index",
                "index (names the results path)",
                edition::vdb_indexes(mode),
            )
            .default_value("DISKANN"),
            choice(
                "index_type",
                "index-type",
                "index to build/estimate (default --vdb-index)",
                edition::vdb_indexes(mode),
            ),
        ];
        if cmd == "datasize" || cmd == "datagen" {
            v.extend([
                int("dimension", "dimension", "vector dimension").default_value("1536"),
                int("num_vectors", "num-vectors", "vectors").default_value("1000000"),
                int("num_shards", "num-shards", "shards").default_value("1"),
                choice(
                    "vector_dtype",
                    "vector-dtype",
                    "vector type",
                    &["FLOAT_VECTOR"],
                )
                .default_value("FLOAT_VECTOR"),
            ]);
        }
        if cmd != "datasize" {
            let tmp = std::env::temp_dir().join("mlps_vdb");
            v.extend([
                protocol(),
                opt("host", "host", "database address")
                    .short('s')
                    .default_value("127.0.0.1"),
                int("port", "port", "database port")
                    .short('p')
                    .default_value("19530"),
                opt("collection", "collection", "collection name"),
                opt("config", "config", "named or path config for the harness"),
                opt(
                    "storage_root",
                    "storage-root",
                    "where the engine stores data",
                ),
                opt("storage_type", "storage-type", "engine storage type")
                    .default_value("local_fs"),
                flag(
                    "distributed",
                    "distributed",
                    "fan out across --hosts via MPI",
                ),
                hosts(false),
                int("npernode", "npernode", "processes per client")
                    .alias("num-processes-per-client")
                    .default_value("1"),
                choice("mpi_impl", "mpi-impl", "MPI flavour", &["mpich", "openmpi"])
                    .default_value("mpich"),
                choice(
                    "coordination",
                    "coordination",
                    "rank coordination",
                    &["filesystem", "mpi"],
                )
                .default_value("filesystem"),
                opt(
                    "rank_output_dir",
                    "rank-output-dir",
                    "per-rank output directory",
                )
                .default_value(&*Box::leak(
                    tmp.to_string_lossy().into_owned().into_boxed_str(),
                )),
                int("seed", "seed", "base seed (rank adds)").default_value("42"),
                int(
                    "ready_timeout",
                    "ready-timeout",
                    "seconds to wait for readiness",
                )
                .default_value("7200"),
            ]);
            v.extend(mpi_args("mpiexec"));
        }
        if cmd == "datagen" {
            v.extend([
                choice(
                    "distribution",
                    "distribution",
                    "vector distribution",
                    &["uniform", "normal", "zipfian"],
                )
                .default_value("uniform"),
                int("batch_size", "batch-size", "insert batch").default_value("1000"),
                int("chunk_size", "chunk-size", "chunk size").default_value("10000"),
                flag("force", "force", "recreate the collection"),
            ]);
            if mode != Mode::Closed {
                v.extend([
                    int("M", "M", "HNSW M").default_value("16"),
                    int("ef_construction", "ef-construction", "HNSW efConstruction")
                        .default_value("200"),
                    int("max_degree", "max-degree", "DiskANN max degree").default_value("16"),
                    int("inline_pq", "inline-pq", "AISAQ inline PQ").default_value("16"),
                    int(
                        "search_list_size",
                        "search-list-size",
                        "DiskANN search list",
                    )
                    .default_value("200"),
                    choice(
                        "metric_type",
                        "metric-type",
                        "metric",
                        &["COSINE", "L2", "IP"],
                    )
                    .default_value("COSINE"),
                    flag("compact", "compact", "compact after load"),
                    int("monitor_interval", "monitor-interval", "seconds").default_value("5"),
                ]);
            }
        }
        if cmd == "run" {
            v.extend([
                int("batch_size", "batch-size", "query batch per process").default_value("1"),
                int(
                    "num_query_processes",
                    "num-query-processes",
                    "query processes",
                )
                .default_value("1"),
                int("report_count", "report-count", "report every N").default_value("100"),
                choice(
                    "benchmark_mode",
                    "benchmark-mode",
                    "how the run ends",
                    &["timed", "query_count", "sweep"],
                )
                .default_value("timed"),
                int(
                    "runtime",
                    "runtime",
                    "seconds (default 60 when --queries unset)",
                )
                .conflicts_with("queries"),
                int("queries", "queries", "total queries across ranks"),
                int("num_query_vectors", "num-query-vectors", "query vectors")
                    .default_value("1000"),
                int("search_limit", "search-limit", "top-K").default_value("10"),
                int("search_ef", "search-ef", "search ef").default_value("200"),
                int("recall_k", "recall-k", "recall@K (default --search-limit)"),
                opt(
                    "gt_collection",
                    "gt-collection",
                    "ground-truth collection (default <collection>_flat_gt)",
                ),
                int("vector_dim", "vector-dim", "vector dimension").default_value("1536"),
            ]);
            v.extend(timeseries(mode));
        }
        if mode != Mode::Closed {
            // `-p` is `--port` here.
            v.push(params().short(None));
        }
        v.extend(core_std());
        v.extend(open_std(mode));
        v
    };
    Command::new("vectordb")
        .about("vector database workload (--vdb-index)")
        .subcommand(leaf(
            "datasize",
            "estimate index size",
            vec![common("datasize")],
        ))
        .subcommand(leaf(
            "datagen",
            "load vectors and build the index",
            vec![common("datagen")],
        ))
        .subcommand(leaf("run", "run the query benchmark", vec![common("run")]))
}

fn kvcache(mode: Mode) -> Command {
    let open_model = || {
        vec![
            choice("model", "model", "kv-cache model", edition::KVCACHE_MODELS)
                .short('m')
                .default_value(edition::KVCACHE_MODEL_OPEN_DEFAULT),
            int("num_users", "num-users", "simulated users").default_value("100"),
            float("gpu_mem_gb", "gpu-mem-gb", "GPU tier GB").default_value("16.0"),
            float("cpu_mem_gb", "cpu-mem-gb", "CPU tier GB").default_value("32.0"),
        ]
    };
    let cache_dir = || opt("cache_dir", "cache-dir", "NVMe tier directory").value_name("PATH");
    let mut datasize = vec![cache_dir()];
    if mode != Mode::Closed {
        datasize.extend(open_model());
    }
    datasize.extend(core_std());
    let mut run = vec![
        cache_dir(),
        opt(
            "kvcache_bin_path",
            "kvcache-bin-path",
            "path of the kv-cache engine",
        ),
        exec_type(),
        int("num_processes", "num-processes", "total ranks"),
        int("npernode", "npernode", "ranks per host").alias("num-processes-per-client"),
        hosts(true),
    ];
    run.extend(mpi_args("mpirun"));
    run.extend(core_std());
    if mode != Mode::Closed {
        run.extend(open_model());
        run.extend([
            int("duration", "duration", "seconds per trial")
                .short('d')
                .default_value("60"),
            choice(
                "generation_mode",
                "generation-mode",
                "token generation",
                &["none", "fast", "realistic"],
            )
            .default_value("realistic"),
            choice(
                "performance_profile",
                "performance-profile",
                "profile",
                &["latency", "throughput"],
            )
            .default_value("throughput"),
            flag("disable_multi_turn", "disable-multi-turn", "no multi-turn"),
            flag(
                "disable_prefix_caching",
                "disable-prefix-caching",
                "no prefix caching",
            ),
            flag("enable_rag", "enable-rag", "enable RAG"),
            int("rag_num_docs", "rag-num-docs", "RAG documents").default_value("10"),
            flag("enable_autoscaling", "enable-autoscaling", "autoscaling"),
            choice(
                "autoscaler_mode",
                "autoscaler-mode",
                "autoscaler",
                &["qos", "capacity"],
            )
            .default_value("qos"),
            int("seed", "seed", "seed"),
            int("trials", "trials", "trials per option"),
            float(
                "inter_option_delay",
                "inter-option-delay",
                "seconds between options",
            ),
            opt("config", "config", "engine config file").value_name("PATH"),
            int(
                "max_concurrent_allocs",
                "max-concurrent-allocs",
                "cap (0 disables)",
            ),
            flag(
                "enable_latency_tracing",
                "enable-latency-tracing",
                "bpftrace latency tracing (root on every host)",
            ),
        ]);
        run.extend(open_std(mode));
        run.extend(timeseries(mode));
    }
    Command::new("kvcache")
        .about("KV-cache offload workload")
        .subcommand(leaf("datasize", "estimate cache footprint", vec![datasize]))
        .subcommand(leaf("run", "run the kv-cache workload", vec![run]))
}

fn mode_cmd(mode: Mode, about: &'static str, focus: Focus) -> Command {
    let c = Command::new(mode.as_str()).about(about);
    if !focused(focus, mode.as_str()) {
        return c;
    }
    let focus = rest(focus);
    let stub = |name: &'static str, about: &'static str| Command::new(name).about(about);
    c.subcommand(if focused(focus, "training") {
        training(mode, rest(focus))
    } else {
        stub("training", "DLIO training workloads (model first)")
    })
    .subcommand(if focused(focus, "checkpointing") {
        checkpointing(mode)
    } else {
        stub(
            "checkpointing",
            "DLIO checkpoint write/read workloads (--model/-m)",
        )
    })
    .subcommand(if focused(focus, "vectordb") {
        vectordb(mode)
    } else {
        stub("vectordb", "vector database workload (--vdb-index)")
    })
    .subcommand(if focused(focus, "kvcache") {
        kvcache(mode)
    } else {
        stub("kvcache", "KV-cache offload workload")
    })
}

// ----- utilities -------------------------------------------------------------------------

fn results_dir_only() -> Arg {
    opt("results_dir", "results-dir", "results root; layered").value_name("DIR")
}

fn selection() -> Vec<Arg> {
    vec![
        results_dir_only(),
        choice("mode", "mode", "division", &["closed", "open", "whatif"]),
        choice(
            "benchmark",
            "benchmark",
            "benchmark",
            &["training", "checkpointing", "vectordb", "kvcache"],
        ),
        opt("model", "model", "model (vectordb: <engine>/<index>)"),
        opt("systemname", "systemname", "system name"),
        flag("json", "json", "JSON output"),
    ]
}

fn utilities() -> Vec<Command> {
    vec![
        Command::new("init")
            .about("initialise a results directory for an organisation")
            .arg(
                Arg::new("orgname")
                    .required(true)
                    .help("organisation, [A-Za-z0-9._-]+"),
            )
            .arg(Arg::new("results_dir").help("default ~/mlpstorage-results")),
        Command::new("reports")
            .about("reports over the results tree")
            .subcommand(leaf(
                "reportgen",
                "aggregate runs into results.json / results.csv",
                vec![core_std()],
            )),
        Command::new("history")
            .about("earlier invocations (<results-dir>/.mlps/history)")
            .subcommand(
                Command::new("show")
                    .about("list recorded invocations")
                    .arg(int("limit", "limit", "last N entries").short('n'))
                    .arg(int("id", "id", "one entry").short('i')),
            )
            .subcommand(
                Command::new("rerun")
                    .about("run a recorded invocation again")
                    .arg(
                        Arg::new("rerun_id")
                            .required(true)
                            .value_parser(value_parser!(i64)),
                    ),
            ),
        Command::new("runs")
            .about("the run ledger")
            .subcommand(
                Command::new("list")
                    .about("one row per leaf")
                    .args(selection())
                    .arg(choice(
                        "status",
                        "status",
                        "status",
                        &["complete", "failed", "incomplete"],
                    )),
            )
            .subcommand(
                Command::new("show")
                    .about("one run in detail")
                    .arg(results_dir_only())
                    .arg(
                        Arg::new("id")
                            .required(true)
                            .value_parser(value_parser!(i64)),
                    ),
            )
            .subcommand(
                Command::new("rm")
                    .about("move leaves to .mlps/trash")
                    .arg(results_dir_only())
                    .arg(
                        Arg::new("ids")
                            .num_args(0..)
                            .value_parser(value_parser!(i64)),
                    )
                    .arg(choice(
                        "status",
                        "status",
                        "only leaves with this status",
                        &["complete", "failed", "incomplete"],
                    ))
                    .arg(opt(
                        "older_than",
                        "older-than",
                        "AGE (12h, 7d, 2w) or DATE (2026-09-01)",
                    ))
                    .arg(int(
                        "keep_last",
                        "keep-last",
                        "keep the newest N per result",
                    ))
                    .arg(flag("yes", "yes", "do not ask").short('y')),
            )
            .subcommand(
                Command::new("purge")
                    .about("delete the trash")
                    .arg(results_dir_only())
                    .arg(flag("yes", "yes", "do not ask").short('y')),
            )
            .subcommand(
                Command::new("gc")
                    .about("move unreferenced code images to the trash")
                    .arg(results_dir_only())
                    .arg(flag("yes", "yes", "do not ask").short('y')),
            ),
        Command::new("status")
            .about("one row per result: runs have/required and readiness")
            .args(selection())
            .arg(choice(
                "submit",
                "submit",
                "only results in this state",
                &["short", "invalid", "paperwork", "ready"],
            ))
            .arg(flag("runs", "runs", "expand each result into its runs")),
        Command::new("submit")
            .about("package a ready submission")
            .arg(results_dir_only())
            .arg(flag("dry_run", "dry-run", "describe, write nothing"))
            .arg(opt("out", "out", "directory or .tar.gz")),
        Command::new("lockfile")
            .about("generate or verify a Python lockfile")
            .subcommand(
                Command::new("generate")
                    .about("uv pip compile the project")
                    .arg(
                        opt("pyproject", "pyproject", "pyproject.toml")
                            .default_value("pyproject.toml"),
                    )
                    .arg(
                        opt("output", "output", "lockfile path")
                            .short('o')
                            .default_value("requirements.txt"),
                    )
                    .arg(flag("generate_hashes", "generate-hashes", "add hashes"))
                    .arg(opt("python_version", "python-version", "target Python"))
                    .arg(opt("exclude_newer", "exclude-newer", "DATE"))
                    .arg(opt("extra", "extra", "extras").action(ArgAction::Append))
                    .arg(flag(
                        "all",
                        "all",
                        "requirements.txt and requirements-full.txt",
                    ))
                    .arg(flag(
                        "torch_cpu",
                        "torch-cpu",
                        "resolve PyTorch from the CPU-only index",
                    ))
                    .arg(flag(
                        "tool",
                        "tool",
                        "write a tool lock (binary hash, workload hashes, system tools) instead",
                    ))
                    .arg(results_dir_only()),
            )
            .subcommand(
                Command::new("verify")
                    .about("compare installed packages with a lockfile")
                    .arg(
                        opt("lockfile", "lockfile", "lockfile path")
                            .short('l')
                            .default_value("requirements.txt"),
                    )
                    .arg(opt("skip", "skip", "package to skip").action(ArgAction::Append))
                    .arg(flag(
                        "allow_missing",
                        "allow-missing",
                        "missing packages are fine",
                    ))
                    .arg(flag("strict", "strict", "fail on any difference"))
                    .arg(
                        opt("python", "python", "interpreter whose packages are checked")
                            .default_value("python3"),
                    )
                    .arg(results_dir_only()),
            ),
        Command::new("config")
            .about("the per-user config file")
            .subcommand(
                Command::new("show")
                    .about("every allowed key and its value")
                    .arg(flag("json", "json", "JSON output")),
            )
            .subcommand(
                Command::new("set")
                    .about("set a key")
                    .arg(Arg::new("key").required(true))
                    .arg(
                        Arg::new("values")
                            .required(true)
                            .num_args(1..)
                            .allow_hyphen_values(true),
                    ),
            )
            .subcommand(
                Command::new("unset")
                    .about("remove a key")
                    .arg(Arg::new("key").required(true)),
            )
            .subcommand(Command::new("path").about("print the config file path")),
        Command::new("version").about("print the version"),
        Command::new("validate")
            .about("check a submission tree against the rules")
            .arg(Arg::new("submission_dir").required(true))
            .arg(opt(
                "submitters",
                "submitters",
                "CSV of submitters (default all)",
            ))
            .arg(opt("mlperf_version", "mlperf-version", "v2.0 or v3.0").default_value("v3.0"))
            .arg(opt(
                "edition",
                "edition",
                "rules edition 1.0, 2.0 or 3.0 (default: read from the tree's own stamps)",
            ))
            .arg(opt("csv", "csv", "summary CSV path").default_value("summary.csv"))
            .arg(flag("skip_output_file", "skip-output-file", "write no CSV"))
            .arg(opt(
                "reference_checksum",
                "reference-checksum",
                "MD5 (accepted, unused)",
            ))
            .args(core_std()),
        Command::new("rules-coverage")
            .about("reconcile Rules.md rule IDs with the checks")
            .arg(opt("rules_md", "rules-md", "path of Rules.md")),
    ]
}

/// The full command tree.
pub fn command() -> Command {
    build(None)
}

/// The tree needed to parse `args` (argv without argv[0], aliases rewritten): the invoked path
/// in full, everything else as stubs.
pub fn command_for(args: &[String]) -> Command {
    let path: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .take(3)
        .collect();
    build(Some(&path))
}

fn build(focus: Focus) -> Command {
    let mut root = Command::new("mlpstorage")
        .version(env!("CARGO_PKG_VERSION"))
        .about("MLPerf Storage v3.0 benchmark suite (Rust)")
        .subcommand_value_name("COMMAND")
        .arg(
            Arg::new("help_all")
                .long("help_all")
                .action(ArgAction::SetTrue)
                .help("print the full reference tree"),
        )
        .subcommand(mode_cmd(Mode::Closed, "CLOSED division", focus))
        .subcommand(mode_cmd(Mode::Open, "OPEN division", focus))
        .subcommand(mode_cmd(
            Mode::Whatif,
            "explore any model/accelerator; never submitted",
            focus,
        ));
    for u in utilities() {
        root = root.subcommand(u);
    }
    decorate(root)
}

/// Finds an option of `cmd` by a `--long`, `--alias` or `-s` token (without `=value`).
fn find_opt<'a>(cmd: &'a Command, token: &str) -> Option<&'a Arg> {
    if let Some(long) = token.strip_prefix("--") {
        cmd.get_arguments().find(|a| {
            a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long))
        })
    } else {
        let c = token.strip_prefix('-')?.chars().next()?;
        cmd.get_arguments().find(|a| a.get_short() == Some(c))
    }
}

/// Context help (§1.1): if `args` (without argv[0], short aliases rewritten) stop at a node that
/// still needs a positional, returns the `next: …` line. `None` lets clap parse normally.
pub fn context_next(root: &Command, args: &[String]) -> Option<String> {
    if args
        .iter()
        .any(|a| a == "-h" || a == "--help" || a == "--help_all" || a == "--version" || a == "-V")
    {
        return None;
    }
    let mut cmd = root;
    let mut positionals = 0usize;
    let mut i = 0;
    while i < args.len() {
        let tok = &args[i];
        i += 1;
        if tok == "--" {
            return None;
        }
        if tok.starts_with('-') && tok.len() > 1 {
            let name = tok.split('=').next().unwrap_or(tok);
            if tok.contains('=') {
                continue;
            }
            if let Some(a) = find_opt(cmd, name) {
                let takes = a.get_num_args().map(|r| r.max_values()).unwrap_or(1);
                if matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
                    continue;
                }
                let mut taken = 0;
                while i < args.len() && taken < takes && !args[i].starts_with('-') {
                    i += 1;
                    taken += 1;
                }
            }
            continue;
        }
        if cmd.has_subcommands() {
            cmd = cmd.find_subcommand(tok)?;
        } else {
            positionals += 1;
        }
    }
    let choices: Vec<String> = if cmd.has_subcommands() {
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect()
    } else {
        let proto = cmd
            .get_positionals()
            .find(|a| a.get_id() == "data_access_protocol")?;
        if positionals > 0 {
            return None;
        }
        proto
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect()
    };
    Some(format!(
        "next: {}  (or -h or --help_all for details)",
        choices.join(" | ")
    ))
}

/// The `--help_all` reference tree: every command path with its positionals and options.
pub fn help_all(root: &Command) -> String {
    fn walk(cmd: &Command, path: &str, out: &mut String) {
        let mut line = path.to_string();
        for p in cmd.get_positionals() {
            let name = p
                .get_value_names()
                .and_then(|v| v.first().map(|s| s.to_string()))
                .unwrap_or_else(|| p.get_id().to_string());
            line.push_str(&format!(" <{name}>"));
        }
        if !cmd.has_subcommands() || cmd.get_arguments().any(|a| !a.is_positional()) {
            out.push_str(&line);
            if let Some(about) = cmd.get_about() {
                out.push_str(&format!("    # {about}"));
            }
            out.push('\n');
            for a in cmd.get_arguments().filter(|a| !a.is_positional()) {
                if a.get_id() == "help" || a.get_id() == "version" {
                    continue;
                }
                let mut s = format!("    {}", display_name(a));
                let pv = a.get_possible_values();
                if !pv.is_empty() && !matches!(a.get_action(), ArgAction::SetTrue) {
                    let names: Vec<&str> = pv.iter().map(|v| v.get_name()).collect();
                    s.push_str(&format!(" {{{}}}", names.join(",")));
                }
                let defaults: Vec<String> = a
                    .get_default_values()
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect();
                if !defaults.is_empty() && !matches!(a.get_action(), ArgAction::SetTrue) {
                    s.push_str(&format!(" [default: {}]", defaults.join(" ")));
                }
                if let Some(h) = a.get_help() {
                    s.push_str(&format!("  {h}"));
                }
                out.push_str(&s);
                out.push('\n');
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut out = String::new();
    walk(root, root.get_name(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn grammar_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn next_hints() {
        let next = |v: &[&str]| context_next(&command_for(&s(v)), &s(v));
        assert_eq!(
            next(&["closed", "training"]).as_deref(),
            Some("next: unet3d | retinanet  (or -h or --help_all for details)")
        );
        assert!(
            next(&["closed", "training", "unet3d", "run"])
                .is_some_and(|n| n.starts_with("next: file | object"))
        );
        assert!(
            next(&["closed", "training", "unet3d", "run", "--hosts", "a", "b"])
                .is_some_and(|n| n.starts_with("next: file | object"))
        );
        assert_eq!(next(&["closed", "training", "unet3d", "run", "file"]), None);
        assert_eq!(next(&["closed", "training", "unet3d", "datasize"]), None);
        assert_eq!(next(&["closed", "training", "bogus"]), None);
    }

    #[test]
    fn aliases_rewrite() {
        assert_eq!(
            rewrite_short_aliases(&s(&["-rd", "x", "-sn=y", "-s", "--", "-np"])),
            s(&["--results-dir", "x", "--systemname=y", "-s", "--", "-np"])
        );
    }
}
