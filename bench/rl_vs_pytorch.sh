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
python3 - "$COLLAB_EPOCHS" "${crust[*]}" "${ctorch2[*]}" "${ctorch1[*]}" "$TORCH_VERSION" <<'PY'
import statistics as st, sys
e = int(sys.argv[1]); r, t2, t1 = ([float(x) for x in a.split()] for a in sys.argv[2:5])
m = lambda v: st.median(v)
print(f"\n## RL training speed: Thread-Call*5 (collaborative) on S1, {e} epochs x 5 services x 1,000 interactions, {len(r)} interleaved rounds (medians)\n")
print("| implementation | seconds | epochs/s | speed vs this trainer |")
print("|---|---|---|---|")
print(f"| sfr2l (burn 0.22, Flex CPU) | {m(r):.2f} | {e/m(r):.2f} | 1.00 |")
print(f"| PyTorch {sys.argv[5]} (2 threads) | {m(t2):.2f} | {e/m(t2):.2f} | {m(r)/m(t2):.2f} |")
print(f"| PyTorch {sys.argv[5]} (1 thread) | {m(t1):.2f} | {e/m(t1):.2f} | {m(r)/m(t1):.2f} |")
print(f"\nsfr2l vs PyTorch (2 threads): {m(t2)/m(r):.2f}x (target >= 1.5); vs PyTorch (1 thread): {m(t1)/m(r):.2f}x")
PY
python3 - "$EPOCHS" "${rust[*]}" "${torch2[*]}" "${torch1[*]}" "$TORCH_VERSION" <<'PY'
import statistics as st, sys
e = int(sys.argv[1]); r, t2, t1 = ([float(x) for x in a.split()] for a in sys.argv[2:5])
m = lambda v: st.median(v)
print(f"\n## RL training speed: Thread-Call on S1, {e} epochs x 1,000 interactions, {len(r)} interleaved rounds (medians)\n")
print("| implementation | seconds | epochs/s | speed vs this trainer |")
print("|---|---|---|---|")
print(f"| sfr2l (burn 0.22, Flex CPU; one thread per agent) | {m(r):.2f} | {e/m(r):.1f} | 1.00 |")
print(f"| PyTorch {sys.argv[5]} (2 threads) | {m(t2):.2f} | {e/m(t2):.1f} | {m(r)/m(t2):.2f} |")
print(f"| PyTorch {sys.argv[5]} (1 thread) | {m(t1):.2f} | {e/m(t1):.1f} | {m(r)/m(t1):.2f} |")
print(f"\nsfr2l vs PyTorch (2 threads): {m(t2)/m(r):.2f}x (target >= 1.5); vs PyTorch (1 thread): {m(t1)/m(r):.2f}x")
PY
