#!/usr/bin/env bash
# `make demo`: the main job on the embedded default profile (S1), end to end on the real lab:
# real Envoy sidecars + real httpbin, a small live collection with exact traces, the same
# traces re-ingested from the Envoy log as `kubectl logs` output would be, the simulator and
# agents, the in-mesh decision, and a small validation of those decisions on the real lab.
set -euo pipefail
cd "$(dirname "$0")/.."
SFR2L=./target/fast/sfr2l
OUT=${DEMO_OUT:-.lab/demo}
rm -rf "$OUT"; mkdir -p "$OUT"
echo "== 1. The Istio circuit-breaking task on the lab (maxConnections 1, pending 1, 1 request/connection)"
$SFR2L lab up --study s1 --hosts 1 --bad-hosts 0 --dir "$OUT/lab" --base-port 19300
trap '$SFR2L lab down --dir "$OUT/lab" >/dev/null 2>&1 || true' EXIT
$SFR2L lab apply --dir "$OUT/lab" manifests/overlays/istio-task   # the overlay: its DestinationRule and WasmPlugin
for c in 2 3; do
  echo "-- fortio-style load: -c $c -n $((c * 10))"
  $SFR2L load -c $c -n $((c * 10)) --run "demo-task-c$c" http://127.0.0.1:19301/get | grep -E "^(Code|Ended|Sockets)"
done
sleep 0.3
echo "-- the filter's trace records, ingested from the client sidecar's Envoy log:"
$SFR2L traces ingest "$OUT/lab/logs/client-envoy.log" > "$OUT/traces.jsonl"
python3 - "$OUT/traces.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("   run {}: {} responses, codes {}, qps {:.0f}, 503 rate {:.2f}, overflow 503s {}".format(
        r["run"], r["responses"], r["codes"], r["qps"], r["rate_503"], r["reasons"]["overflow"]))
PY
$SFR2L lab down --dir "$OUT/lab"
trap - EXIT

echo
echo "== 2. A small live collection on profile S1 (rules and loads drawn from the paper's Table 4 ranges)"
$SFR2L lab collect --study s1 --rows 24 --repeats 4:3 --seed 7 --out "$OUT/s1-demo.csv" --dir "$OUT/collect" --base-port 19400
python3 - "$OUT/s1-demo.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
r503 = [float(r["rate_503"]) for r in rows]
qps = [float(r["qps"]) for r in rows]
print(f"   {len(rows)} exact rows (calls sent = traced = Envoy cluster stats, code by code)")
print(f"   503 share {sum(r503)/len(r503):.2f}, QPS {min(qps):.0f}..{max(qps):.0f}")
print("   first rows:")
for r in rows[:3]:
    print("   ", {k: r[k] for k in ["max_pending_requests", "max_connections", "max_requests_per_connection", "threads", "calls", "qps", "rate_503"]})
PY
echo "   dataset: $OUT/s1-demo.csv, meta: $OUT/s1-demo.meta.json"
echo
echo
echo "== 3. The simulator: burn MLP + baselines fitted on the live rows, exported to ONNX, reloaded by tract"
echo "   (24 rows are far too few for a useful model; this shows the stage end to end. The committed"
echo "   simulators in policies/ were fitted on the 2,000-row datasets: see report/table4.md.)"
$SFR2L sim fit --data "$OUT/s1-demo.csv" --out "$OUT/policies/s1" --hidden 64 --epochs 60 --ensemble 2 2>/dev/null
python3 - "$OUT/policies/s1/simulator.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
m = c["metrics"]
print(f"   card: profile {c['profile']}, {c['dataset']['rows']} rows, onnx sha256 {c['onnx_sha256'][:12]}..")
print(f"   test mse: mlp {m['mlp_ensemble']['mse']:.3f}, svr {m['svr']['mse']:.3f}, logistic {m['logistic']['mse']:.3f}, ridge {m['ridge']['mse']:.3f}")
PY
echo "-- the committed S1 simulator (policies/s1, fitted on data/s1.csv), one rule under three loads:"
for load in "1,400" "3,425" "5,450"; do
  printf "   threads,calls = %-8s -> " "$load"
  $SFR2L sim predict --sim policies/s1 --features "4,4,4,180,100,1,1,$load"
done
echo
echo "== 4. Agents: Thread-Call learned on the committed S1 simulator (40 epochs x 1,000 interactions),"
echo "   against the random baseline and the exhaustive optimum; exported to ONNX and asked with tract"
$SFR2L rl learn --sim policies/s1 --config thread-call --epochs 40 --out "$OUT/agents/thread-call" 2>/dev/null \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   RL/random {:.2f} (max 25-epoch rolling mean), optimum/random {:.2f}, RL/optimum {:.2f}, greedy/optimum {:.2f}, {:.1f} s".format(r["sim_ratio"], r["optimum_ratio"], r["rl_over_optimum"], r["greedy_over_optimum"], r["seconds"]))'
RULE="4,4,4,180,100,1,1"
T=$($SFR2L rl decide --agent "$OUT/agents/thread-call/thread.onnx" --state "$RULE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decision"])')
C=$($SFR2L rl decide --agent "$OUT/agents/thread-call/call.onnx" --state "$RULE,$T" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decision"])')
echo "   rule $RULE: the thread agent picks -c $T, the call agent then picks -n $C (the worst-case load test to run)"
printf "   simulator on that load: "; $SFR2L sim predict --sim policies/s1 --features "$RULE,$T,$C"
echo
echo "== 5. In the mesh: the client sidecar loads the committed S1 Thread-Call agents and simulator from"
echo "   the lab's artifact server (pinned by sha256, run by tract inside Envoy), decides the load test"
echo "   for the DestinationRule in force and runs it itself"
$SFR2L lab up --study s1 --artifacts policies --dir "$OUT/mesh" --base-port 19500
trap '$SFR2L lab down --dir "$OUT/mesh" >/dev/null 2>&1 || true' EXIT
$SFR2L lab loadtest --dir "$OUT/mesh" --agents policies/s1/agents/thread-call/seed-1 --simulator --trigger demo manifests/overlays/s1/destinationrule.yaml \
  | tee "$OUT/inline.txt" | grep -v '^SFR2L_TRACE' | sed 's/^/   /'
echo "   its trace record (schema 2, with the decision) is in $OUT/inline.txt and in the sidecar log;"
printf "   sidecar metrics: "
python3 -c 'import urllib.request; print(" ".join(urllib.request.urlopen("http://127.0.0.1:19500/stats?filter=sfr2l_(inline_last|models_loaded)").read().decode().split("\n")))'
$SFR2L lab down --dir "$OUT/mesh"
trap - EXIT
echo
echo "== 6. Validation on the real lab (the paper's Val. column, small): 4 states of the committed S1"
echo "   Thread-Call run replayed: the agents' load test and a random one, each run on the lab and"
echo "   scored as in training; the same states through the simulator beside them"
$SFR2L validate --agents policies/s1/agents/thread-call/seed-1 --samples 4 --out "$OUT/validation.csv" \
  --dir "$OUT/validate" --base-port 19700 2>&1 | sed 's/^/   /'
echo "   per-state results: $OUT/validation.csv; the whole table (16 states per cell, about 29 min):"
echo "   $SFR2L validate --table   (report/table5.md Val. column, report/validation.md)"
echo
if [ -f target/explorer/sfr2l_explorer_bg.wasm ]; then
  if [ "${EXPLORE:-0}" = 1 ]; then
    echo "== The what-if explorer: http://127.0.0.1:${EXPLORE_PORT:-8731}/  (Ctrl-C to stop)"
    exec $SFR2L explore --addr "127.0.0.1:${EXPLORE_PORT:-8731}"
  fi
  echo "== The what-if explorer: run \`$SFR2L explore\` (or \`EXPLORE=1 make demo\`), then open http://127.0.0.1:${EXPLORE_PORT:-8731}/"
fi
