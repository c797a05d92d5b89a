#!/usr/bin/env python3
"""Prints the data card of each dataset (data/README.md): size, 503 share, QPS range, collection
time, and the within-configuration share of variance from the repeat block (the noise floor)."""
import csv, json, statistics as st, sys
from collections import defaultdict

def within_share(rows, col):
    groups = defaultdict(list)
    for r in rows:
        if "-r" in r["config_id"]:
            groups[r["config_id"]].append(float(r[col]))
    reps = [g for g in groups.values() if len(g) > 1]
    if not reps:
        return float("nan"), 0
    within = st.mean(st.variance(g) for g in reps)  # unbiased within-config variance
    total = st.variance([float(r[col]) for r in rows])
    return within / total if total > 0 else float("nan"), len(reps)

def faults(t):
    """The topology's failure modes in words (data/README.md, "Failure modes per profile")."""
    parts = [f"{t['hosts']} hosts"]
    if t["bad_hosts"]:
        parts.append(f"{t['bad_hosts']} bad at {t['bad_abort_percent']:g}% 503")
    for key, what in (("client_quota", "per-test quota"), ("conn_quota", "per-connection budget")):
        q = t.get(key)
        if q:
            refill = f" +{q['refill_per_s']}/s" if q["refill_per_s"] else ""
            parts.append(f"{what} {q['tokens']}{refill} on {q['hosts']} host{'s' if q['hosts'] > 1 else ''}")
    c = t.get("capacity")
    if c:
        parts.append(f"capacity {c['concurrency']}+{c['queue']} on {c['hosts']} hosts")
    parts.append(f"{t['delay_ms']} ms delay")
    return ", ".join(parts)

def rate_column(header):
    """The failure-rate column: `rate_503`, or named by the study's failure codes (`rate_429_503`)."""
    return next(c for c in header if c.startswith("rate_") and c != "rate_200")

def card(path):
    rows = list(csv.DictReader(open(path)))
    meta = json.load(open(path.replace(".csv", ".meta.json")))
    rate = rate_column(rows[0].keys())
    r503 = [float(r[rate]) for r in rows]
    qps = [float(r["qps"]) for r in rows]
    la = [float(r["load_avg_1m"]) for r in rows]
    w503, n = within_share(rows, rate)
    wq, _ = within_share(rows, "qps")
    t = meta["topology"]
    return (f"| {meta['profile'].upper()} | {len(rows)} | {st.mean(r503):.3f} (sd {st.pstdev(r503):.3f}) | "
            f"{min(qps):.0f} .. {max(qps):.0f} (median {st.median(qps):.0f}) | {wq:.2f} | {w503:.2f} | {n} | "
            f"{meta['collection_seconds']/60:.1f} min | {meta['median_overhead_ms']:.0f} ms | "
            f"{faults(t)} | "
            f"{meta['rejected_tries']} | {st.median(la):.2f} |")


if __name__ == "__main__":
    print("| dataset | rows | 503 share (mean, sd) | QPS range | within-config share of variance, QPS | same, 503 rate | repeat configs | collection time | median lab overhead/row | upstream faults | rejected tries | median load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in sys.argv[1:]:
        print(card(p))
