#!/usr/bin/env bash
# Thread-Call on S1, the Rust trainer (burn, Flex CPU backend) against a straightforward PyTorch
# version (bench/pytorch_thread_call.py), side by side, interleaved over ROUNDS rounds; then the
# collaborative Thread-Call*5 cell (bench/pytorch_collab.py), the kind that is 90% of Table 5's
# protocol, over COLLAB_EPOCHS epochs.
# PyTorch is optional: it is looked for in bench/.venv-torch (python3 -m venv bench/.venv-torch &&
# bench/.venv-torch/bin/pip install torch onnxruntime numpy); without it this step is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-100}
COLLAB_EPOCHS=${COLLAB_EPOCHS:-10}
ROUNDS=${ROUNDS_RL:-3}
PY=bench/.venv-torch/bin/python
if ! [ -x "$PY" ] || ! "$PY" -c "import torch, onnxruntime" 2>/dev/null; then
  echo "PyTorch not installed in bench/.venv-torch; skipping the RL speed comparison"
  exit 0
fi
SFR2L=target/fast/sfr2l
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
seconds() { python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])'; }
rust=(); torch2=(); torch1=(); crust=(); ctorch2=(); ctorch1=()
for r in $(seq "$ROUNDS"); do
  rust+=("$($SFR2L rl learn --sim policies/s1 --config thread-call --epochs "$EPOCHS" --out "$OUT/r$r" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  torch2+=("$("$PY" bench/pytorch_thread_call.py --epochs "$EPOCHS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  torch1+=("$("$PY" bench/pytorch_thread_call.py --epochs "$EPOCHS" --threads 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  crust+=("$($SFR2L rl learn --sim policies/s1 --config thread-call --services 5 --epochs "$COLLAB_EPOCHS" --out "$OUT/c$r" 2>/dev/null | seconds)")
  ctorch2+=("$("$PY" bench/pytorch_collab.py --epochs "$COLLAB_EPOCHS" | seconds)")
  ctorch1+=("$("$PY" bench/pytorch_collab.py --epochs "$COLLAB_EPOCHS" --threads 1 | seconds)")
done
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
# table TITLE EPOCHS "rust seconds" "torch 2-thread seconds" "torch 1-thread seconds"
table() {
  python3 - "$@" "$TORCH_VERSION" <<'PY'
import statistics as st, sys
title, e = sys.argv[1], int(sys.argv[2]); r, t2, t1 = ([float(x) for x in a.split()] for a in sys.argv[3:6])
m, v = st.median, sys.argv[6]
print(f"\n## RL training speed: {title.format(e=e)}, {len(r)} interleaved rounds (medians)\n")
print("| implementation | seconds | epochs/s | speed vs this trainer |")
print("|---|---|---|---|")
for name, x in (("sfr2l (burn 0.22, Flex CPU)", r), (f"PyTorch {v} (2 threads)", t2), (f"PyTorch {v} (1 thread)", t1)):
    print(f"| {name} | {m(x):.2f} | {e/m(x):.2f} | {m(r)/m(x):.2f} |")
print(f"\nsfr2l vs PyTorch (2 threads): {m(t2)/m(r):.2f}x (target >= 1.5); vs PyTorch (1 thread): {m(t1)/m(r):.2f}x")
PY
}
table "Thread-Call*5 (collaborative) on S1, {e} epochs x 5 services x 1,000 interactions" "$COLLAB_EPOCHS" "${crust[*]}" "${ctorch2[*]}" "${ctorch1[*]}"
table "Thread-Call on S1, {e} epochs x 1,000 interactions" "$EPOCHS" "${rust[*]}" "${torch2[*]}" "${torch1[*]}"
