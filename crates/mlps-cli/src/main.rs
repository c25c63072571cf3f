//! `mlpstorage` binary. Everything lives in the `mlps_cli` library; see its crate docs (lib.rs)
//! for the layout and for the seam where benchmark engines plug in (`src/run/`: one function per
//! (benchmark, command), e.g. `run::training::datasize`).
fn main() {
    // A process started by `mpirun` for a job this CLI launched is one rank of that job.
    if let Some(job) = std::env::var_os(mlps_cli::run::ranks::RANK_JOB_ENV) {
        std::process::exit(mlps_cli::run::ranks::rank_main(std::path::Path::new(&job)));
    }
    std::process::exit(mlps_cli::main_entry(std::env::args().collect()));
}
