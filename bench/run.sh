#!/usr/bin/env bash
# `make bench`: builds the baseline filter and oha if missing, then runs all benchmarks side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p sfr2l-minimal-filter --target wasm32-wasip1 --release
OHA=$(command -v oha || true)
if [ -z "$OHA" ]; then
  cargo install oha --locked --root bench/.tools >/dev/null 2>&1 && OHA=bench/.tools/bin/oha || echo "oha could not be installed; skipping that comparison"
fi
cargo run -q --profile fast -p sfr2l-lab --example bench -- --rounds "${ROUNDS:-5}" ${OHA:+--oha "$OHA"} | tee "bench/last-run.md"
# Simulator: fit times and exported-model throughput (appended to the same report).
cargo run -q --profile fast -p sfr2l-learn --example sim_bench | tee -a "bench/last-run.md"
./bench/rl_vs_pytorch.sh | tee -a "bench/last-run.md"
# RL training against the machine's matmul limit (Flex and gemm), and the full protocol's FLOPs.
cargo run -q --profile fast -p sfr2l-learn --example rl_bench | tee -a "bench/last-run.md"
# Load-test mode in Envoy: module sizes, start, model load, decision latency in V8, throughput.
cargo run -q --profile fast -p sfr2l-lab --example loadtest_bench -- "${DECISIONS:-200}" "${ROUNDS:-5}" | tee -a "bench/last-run.md"
