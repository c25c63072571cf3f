#!/usr/bin/env bash
# One command from a fresh Debian machine to a first result: installs the build dependencies it
# needs (apt-get, when root), builds mlpstorage in release mode, then runs a small "whatif"
# unet3d training job — datagen, run, report — into a new temporary results directory.
# Usage: ./scripts/quickstart.sh [RESULTS_PARENT_DIR]      (default: a new dir under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

need_pkgs=(build-essential pkg-config libssl-dev zlib1g-dev)
missing=()
for p in "${need_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "== installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "missing packages: ${missing[*]} — install them (sudo apt-get install -y ${missing[*]}) and re-run" >&2
        exit 1
    fi
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 (rustup) and re-run" >&2; exit 1; }

echo "== building mlpstorage (release)"
cargo build --release -p mlps-cli
M="$repo/target/release/mlpstorage"

work=$(mktemp -d "${1:-/tmp}/mlpstorage-quickstart.XXXXXX")
rd="$work/results"; dd="$work/data"
# A small unet3d-shaped dataset: 64 files of 4 MiB, read by 2 emulated h100 accelerators.
params=(dataset.num_files_train=64 dataset.record_length_bytes=4194304 dataset.record_length_bytes_stdev=0)

echo "== mlpstorage init"
"$M" init quickstart "$rd"
echo "== datasize (what a real closed run would need on this host)"
"$M" whatif training unet3d datasize -ma 2 -at h100 -cm 16 -rd "$rd" -sn quickstart --quiet
echo "== datagen"
"$M" whatif training unet3d datagen file -np 2 -dd "$dd" -rd "$rd" -sn quickstart --quiet --params "${params[@]}"
echo "== run"
"$M" whatif training unet3d run file -na 2 -at h100 -cm 16 -dd "$dd" -rd "$rd" -sn quickstart --quiet \
    --params "${params[@]}" train.epochs=2
echo "== report"
"$M" reports reportgen -rd "$rd" || echo "(reportgen: see the message above)"

summary=$(find "$rd" -name summary.json | head -1)
echo
echo "Results directory: $rd"
echo "Training summary:  $summary"
echo "Dataset (delete when done): $dd"
