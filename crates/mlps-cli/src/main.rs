//! `mlpstorage`: the command line (being built).
fn main() {
    eprintln!("mlpstorage: not available yet");
    std::process::exit(1);
}
