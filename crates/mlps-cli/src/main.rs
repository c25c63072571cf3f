//! `mlpstorage` binary. Everything lives in the `mlps_cli` library; see its crate docs (lib.rs)
//! for the layout and for the seam where benchmark engines plug in (`src/run/`: one function per
//! (benchmark, command), e.g. `run::training::datasize`).
fn main() {
    std::process::exit(mlps_cli::main_entry(std::env::args().collect()));
}
