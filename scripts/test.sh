#!/usr/bin/env bash
# Runs every check a change must pass: formatting, clippy (warnings are errors), all tests.
# Installs the system packages the tests need when run as root on Debian (as CI does).
# Usage: ./scripts/test.sh            (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# System packages the test suite uses. Tests that need a missing one print "SKIP: <reason>".
NEEDED_PKGS=(build-essential pkg-config libssl-dev zlib1g-dev fio openmpi-bin libopenmpi-dev libclang-dev
             openssh-server openssh-client python3-venv python3-numpy)
ensure_packages() {
    local missing=()
    for p in "${NEEDED_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        say "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "NOTE: missing packages ${missing[*]} (not root or no apt-get); tests that need them will SKIP"
    fi
}
ensure_packages
# uv lets the lockfile-generation test run instead of skipping (PyPI is reachable from CI).
if ! command -v uv >/dev/null && command -v python3 >/dev/null; then
    python3 -m pip install -q uv 2>/dev/null || echo "NOTE: pip install uv failed; the uv test will SKIP"
fi

# cargo hides the output of passing tests, so say here which tests will skip and why.
say "optional tools"
have() { command -v "$1" >/dev/null 2>&1; }
report_tool() { if eval "$2"; then echo "  ok    $1"; else echo "  SKIP: $3"; fi; }
report_tool "fio" "have fio" "no fio: xtask benches only (not part of the tests)"
report_tool "mpirun + mpicc" "have mpirun && have mpicc" "MPI tests (cargo test --features mpi) are skipped: no Open MPI"
report_tool "sshd" "[ -x /usr/sbin/sshd ] && have ssh-keygen" "SSH collection tests skip: no openssh-server"
report_tool "python3 -m venv" "python3 -m venv --help >/dev/null 2>&1" "lockfile venv tests skip: no python3 venv"
report_tool "numpy" "python3 -c 'import numpy' 2>/dev/null || /usr/bin/python3 -c 'import numpy' 2>/dev/null" "npz-loads-in-numpy test skips: no numpy"
report_tool "uv" "have uv" "lockfile generation test skips: no uv"
report_tool "tmpfs mount (root)" "[ \"$(id -u)\" -eq 0 ]" "full-disk checkpoint tests skip: not root (cannot mount tmpfs)"

export CARGO_TERM_COLOR=never
say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo test (workspace)"
cargo test --workspace --no-fail-fast

if command -v mpirun >/dev/null && command -v mpicc >/dev/null; then
    say "cargo test with MPI (feature mpi)"
    cargo clippy -p mlps-cluster -p mlps-cli --features mpi --all-targets -- -D warnings
    cargo test -p mlps-cluster --features mpi
    # 2-rank training and checkpoint runs through mpirun, checked against a 2-thread run.
    cargo test -p mlps-cli --features mpi --test mpi_runs
else
    echo "SKIP: MPI tests (mpirun/mpicc not installed: apt-get install -y openmpi-bin libopenmpi-dev libclang-dev)"
fi
say "all checks passed"
