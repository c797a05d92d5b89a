#!/usr/bin/env python3
"""report/studies/<study>.md from what `scripts/study.sh <study>` left behind: the dataset and its
metadata, the simulator card, each configuration's result.json and validation.json, and in the
workflow's lab folder the step wall times (timings.txt) and the advice with its check on the lab
(advise.txt).

    scripts/study_report.py STUDY .lab/study-STUDY > report/studies/STUDY.md
"""
import csv
import json
import re
import statistics as st
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from data_card import within_share  # noqa: E402  (the data cards' noise floor, data/README.md)

CONFIGS = [("thread", "Thread"), ("thread-call", "Thread-Call"), ("call", "Call")]


def rate_column(header):
    """The failure-rate column: `rate_503`, or named by the study's failure codes (`rate_429_503`)."""
    return next(c for c in header if c.startswith("rate_") and c != "rate_200")

def main():
    study, lab = sys.argv[1], Path(sys.argv[2])
    log = (lab / "timings.txt").read_text()
    advice = (lab / "advise.txt").read_text()
    data = Path(f"data/{study}.csv")
    meta = json.loads(Path(f"data/{study}.meta.json").read_text())
    card = json.loads(Path(f"policies/{study}/simulator.json").read_text())
    rows = list(csv.DictReader(data.open()))
    rate = rate_column(rows[0].keys())
    r503 = [float(r[rate]) for r in rows]
    qps = [float(r["qps"]) for r in rows]
    share_qps, configs = within_share(rows, "qps")
    share_503, _ = within_share(rows, rate)
    times = dict(re.findall(r"^([a-z-]+) (\d+) s$", log, re.M))
    m = card["metrics"]
    out = []
    w = out.append
    t = card["study"]["target"]
    w(f"# Study `{study}`: from the study file to validated advice\n")
    w(f"Made by `make build && scripts/study.sh {study}` (which ends with `scripts/study_report.py`) at commit "
      f"`{meta['git_commit']}` on this 2-core machine, nothing else running. Study file `studies/{study}.yaml`, "
      f"sha256 `{meta['study_sha256'][:16]}...`; target `{t['service']}.{t['namespace']}:{t['port']}` "
      f"{t['method']} `{t['path']}`.\n")
    w(f"What ran as the upstream: `{meta['upstream']}`; Envoy `{meta['envoy_version'].split('/')[1]}`, "
      f"{card['study']['thread_grid'][-1]} threads at most, calls grid {card['study']['call_grid']}.\n")
    w("## Wall time\n")
    w("| step | seconds |\n|---|---|")
    for k, v in times.items():
        w(f"| {k} | {v} |")
    total = int(times.get("total", 0))
    w(f"\nTotal **{total} s ({total / 60:.1f} min)** from study file to validated advice (target: at most 45 min).\n")
    w("## Dataset\n")
    w("| rows | repeat configurations | 503 share (mean, sd) | rows without a 503 | QPS range (median) | "
      "within-config share of variance, QPS | same, 503 rate | collection | rejected tries | median lab overhead/row |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    w(f"| {len(rows)} | {configs} x {meta['repeats'].split(':')[1]} | {st.mean(r503):.3f} ({st.pstdev(r503):.3f}) | "
      f"{sum(1 for x in r503 if x == 0)} | {min(qps):.0f} .. {max(qps):.0f} ({st.median(qps):.0f}) | "
      f"{share_qps:.2f} | {share_503:.2f} | {meta['collection_seconds'] / 60:.1f} min | {meta['rejected_tries']} | "
      f"{meta['median_overhead_ms']:.0f} ms |\n")
    w("## Simulator (Table 4 style)\n")
    w("MSE on standardised targets, mean over QPS and 503 rate, on the held-out 20% of configurations; "
      "noise floor from the repeat block with its 90% bootstrap interval.\n")
    single = st.mean(x["mse"] for x in m["mlp_members"])
    best_base = min(m[k]["mse"] for k in ("svr", "logistic", "ridge"))
    lo, hi = m["noise_floor_mean_ci90"]
    w("| SVR | logistic | ridge | MLP (single, mean of members) | MLP ensemble (exported) | noise floor | "
      "MLP / best baseline | MLP / floor |")
    w("|---|---|---|---|---|---|---|---|")
    w(f"| {m['svr']['mse']:.3f} | {m['logistic']['mse']:.3f} | {m['ridge']['mse']:.3f} | {single:.3f} | "
      f"{m['mlp_ensemble']['mse']:.3f} | {m['noise_floor_mean']:.3f} [{lo:.3f}, {hi:.3f}] | "
      f"{m['mlp_ensemble']['mse'] / best_base:.2f} | {m['mlp_ensemble']['mse'] / m['noise_floor_mean']:.2f} |\n")
    w("| model | MSE QPS | MSE 503 | R^2 QPS | R^2 503 |\n|---|---|---|---|---|")
    for k, name in [("mlp_ensemble", "MLP ensemble"), ("svr", "SVR"), ("logistic", "logistic"), ("ridge", "ridge")]:
        e, r2 = m[k]["mse_per_output"], m[k]["r2"]
        w(f"| {name} | {e[0]:.3f} | {e[1]:.3f} | {r2[0]:.2f} | {r2[1]:.2f} |")
    f0, f1 = m["noise_floor"]
    w(f"\nNoise floor per output: QPS {f0:.3f}, 503 rate {f1:.3f}. Fit time {sum(card['fit_seconds'].values()):.0f} s.\n")
    w("## Agents (500 epochs x 1,000 interactions, seed 1) and their validation on the real lab\n")
    w("RL/random is the paper's Sim. (max 25-epoch rolling mean); RL/optimum and greedy/optimum in that window. "
      "The best fixed load test is the choice in the configuration's action space (threads x calls, or one load "
      "with each state's other load) with the highest total reward over all the dataset's states; its share of "
      "the optimum is what a constant policy gets. Val. is the paper's: the agents' and random's tests replayed "
      "on the real lab on 20 states of the best epoch, paired ratio with its 90% bootstrap interval.\n")
    w("| configuration | RL/random (Sim.) | optimum/random | RL/optimum | greedy/optimum | best fixed load test | "
      "fixed/optimum | fixed/random | Val. | simulated on the same states | Val./Sim. | sim-to-real MSE |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for slug, label in CONFIGS:
        d = Path(f"policies/{study}/agents/{slug}/seed-1")
        r = json.loads((d / "result.json").read_text())
        v = json.loads((d / "validation.json").read_text())
        f = r["best_fixed"][0]
        load = " x ".join(
            [f"{f['threads']} threads" if f["threads"] else "own threads",
             f"{f['calls']} calls" if f["calls"] else "own calls"])
        va, si = v["validated"], v["simulated_on_samples"]
        w(f"| {label} | {r['sim_ratio']:.2f} | {r['optimum_ratio']:.2f} | {r['rl_over_optimum']:.3f} | "
          f"{r['greedy_over_optimum']:.3f} | {load} | {f['over_optimum']:.3f} | {f['over_random']:.2f} | "
          f"{va['ratio']:.2f} [{va['lo']:.2f}, {va['hi']:.2f}] | {si['ratio']:.2f} [{si['lo']:.2f}, {si['hi']:.2f}] | "
          f"{v['val_over_sim']:.2f} | {v['sim_error']['mse']:.3f} |")
    w("")
    w("## Advice at the worst-case load test, checked on the real lab\n")
    adv = re.search(r"^== advise: \S*sfr2l (advise .*)$", advice, re.M)
    check = re.search(r"^# CHECK.*$", advice, re.M)
    lines = re.findall(r"^# (?:advised|median ).*$", advice, re.M)
    if adv:
        w(f"`sfr2l {adv.group(1)}`\n")
    w("```")
    for x in lines + ([check.group(0)] if check else []):
        w(x)
    w("```\n")
    rule = Path(f"policies/{study}/advice.yaml")
    if rule.exists():
        w("The advised DestinationRule (`policies/{0}/advice.yaml`; the median rule it is compared with is "
          "`policies/{0}/advice-median.yaml`):\n".format(study))
        w("```yaml")
        w(rule.read_text().rstrip())
        w("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
