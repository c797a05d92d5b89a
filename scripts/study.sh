#!/usr/bin/env bash
# The study workflow on one study file, as a user runs it on their own service: check the study,
# collect on the real lab, fit the simulator, learn the Thread, Thread-Call and Call agents,
# advise the best rule at the worst-case load test and check that advice on the real lab, and
# validate each configuration's agents on the real lab. Resumable (the collection and each
# validation continue where they stopped). Prints each step's wall time and the total, and
# writes report/studies/<study>.md (scripts/study_report.py).
#   make build && scripts/study.sh nginx [BASE_PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${1:?usage: scripts/study.sh STUDY [BASE_PORT]}
PORT=${2:-19700}
S=./target/fast/sfr2l
[ -x "$S" ] || { echo "study.sh: $S is missing: run make build first" >&2; exit 2; }
LAB=.lab/study-$STUDY
POL=policies/$STUDY
mkdir -p "$LAB"
TIMES=$LAB/timings.txt
: > "$TIMES"
start=$(date +%s)
step() { # step NAME COMMAND...: runs it, records its wall time
  local name=$1; shift
  local t=$(date +%s)
  echo "== $name: $*"
  "$@"
  echo "$name $(( $(date +%s) - t )) s" | tee -a "$TIMES"
}
step check $S study check "$STUDY"
step collect $S lab collect --study "$STUDY" --out "data/$STUDY.csv" --resume --dir "$LAB/collect" --base-port "$PORT"
step fit $S sim fit --data "data/$STUDY.csv" --out "$POL"
for cfg in thread thread-call call; do
  step "learn-$cfg" sh -c "$S rl learn --sim $POL --config $cfg > $LAB/learn-$cfg.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); f=r["best_fixed"][0]; print("   RL/random {:.2f}, optimum/random {:.2f}, RL/optimum {:.3f}, greedy/optimum {:.3f}; best fixed load test (threads {}, calls {}) / optimum {:.3f}".format(r["sim_ratio"], r["optimum_ratio"], r["rl_over_optimum"], r["greedy_over_optimum"], f["threads"], f["calls"], f["over_optimum"]))' "$LAB/learn-$cfg.json"
done
# The worst-case load test to advise for: the best fixed threads x calls pair of Thread-Call.
read -r T C < <(python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["best_fixed"][0]; print(f["threads"], f["calls"])' "$LAB/learn-thread-call.json")
ADVISE=(advise --sim "$POL" --threads "$T" --calls "$C" --out "$POL/advice.yaml" --median-out "$POL/advice-median.yaml"
  --check 5 --dir "$LAB/advise" --base-port "$PORT")
step advise $S "${ADVISE[@]}" | tee "$LAB/advise.txt"
for cfg in thread thread-call call; do
  step "validate-$cfg" $S validate --agents "$POL/agents/$cfg/seed-1" --resume --dir "$LAB/validate" --base-port "$PORT"
done
echo "total $(( $(date +%s) - start )) s" | tee -a "$TIMES"
mkdir -p report/studies
python3 scripts/study_report.py "$STUDY" "$LAB" > "report/studies/$STUDY.md.tmp" && mv "report/studies/$STUDY.md.tmp" "report/studies/$STUDY.md"
echo "report: report/studies/$STUDY.md"
