#!/usr/bin/env bash
# Collects data/s1..s5.csv on the lab, one profile after the other (resumable).
# Run on a quiet machine: QPS is measured time on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-2000}
for p in ${PROFILES:-s1 s2 s3 s4 s5}; do
  ./target/fast/sfr2l lab collect --study "$p" --rows "$ROWS" --seed 1 --repeats 50:4 \
    --out "data/$p.csv" --dir ".lab/collect-$p" --resume --quiet
done
