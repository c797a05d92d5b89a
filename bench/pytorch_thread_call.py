#!/usr/bin/env python3
"""A straightforward PyTorch version of `sfr2l rl learn --config thread-call` on one dataset,
for the speed comparison in `make bench` (optional: needs torch, e.g. in bench/.venv-torch).

Same protocol as the Rust trainer: states = the 7 rules of dataset rows drawn uniformly; the
thread agent acts on them, the call agent sees the rules + the chosen threads; epsilon-greedy
(1.0 -> 0.05 over the first 40% of epochs); rewards QPS x P503 from the exported simulator,
evaluated once for every (row, threads, calls) with onnxruntime and looked up (as the Rust
trainer caches them); Q-networks state -> 512 -> 512 -> actions, Adam lr 5e-5, mini-batches of
100 over each epoch's 1,000 interactions, targets = reward / reward scale.

usage: pytorch_thread_call.py --sim policies/s1 --data data/s1.csv --epochs 100 [--threads N]
Prints one JSON line: seconds of the training loop (table build excluded), ratio figures.
"""
import argparse, csv, json, time

import numpy as np
import onnxruntime as ort
import torch

GRIDS = {"s1": (range(1, 6), range(435, 451)), "s2": (range(3, 8), range(100, 401, 100)),
         "s3": (range(10, 17), range(50, 501, 50)), "s4": (range(12, 19), range(250, 601, 50)),
         "s5": (range(16, 21), range(1000, 2001, 100))}
RULES = ["max_pending_requests", "max_connections", "max_requests_per_connection", "base_ejection_time_s",
         "max_ejection_percent", "interval_s", "consecutive_5xx_errors"]


def reward_table(sim, rules, threads, calls):
    s = ort.InferenceSession(sim, providers=["CPUExecutionProvider"])
    names = [i.name for i in s.get_inputs()]
    n, nt, nc = len(rules), len(threads), len(calls)
    x = np.zeros((n, nt, nc, 9), dtype=np.float32)
    x[..., :7] = rules[:, None, None, :]
    x[..., 7] = np.asarray(threads, dtype=np.float32)[None, :, None]
    x[..., 8] = np.asarray(calls, dtype=np.float32)[None, None, :]
    x = x.reshape(-1, 9)
    qps, rate, _ = s.run(None, {nm: x[:, k:k + 1] for k, nm in enumerate(names)})
    return (qps[:, 0].astype(np.float64) * rate[:, 0]).reshape(n, nt, nc)


def problem(a):
    """The dataset's rules (raw and standardised), the grids, the reward table and its scale, and
    the thread grid's mean and sd (the call agent's extra state column)."""
    rows = list(csv.DictReader(open(a.data)))
    rules = np.array([[float(r[k]) for k in RULES] for r in rows], dtype=np.float32)
    tg, cg = (list(g) for g in GRIDS[a.profile])
    table = reward_table(a.sim + "/simulator.onnx", rules, tg, cg)
    mean, std = rules.mean(0), rules.std(0)
    std[std < 1e-9] = 1.0
    return rules, (rules - mean) / std, tg, cg, table, table.std() or 1.0, np.mean(tg), np.std(tg) or 1.0


def qnet(d_in, actions, hidden=512):
    return torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.ReLU(), torch.nn.Linear(hidden, actions))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", default="policies/s1")
    ap.add_argument("--data", default="data/s1.csv")
    ap.add_argument("--profile", default="s1")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--interactions", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    rules, rules_n, tg, cg, table, scale, t_mean, t_std = problem(a)
    opt_row = table.reshape(len(rules), -1).max(axis=1)

    thread_net, call_net = qnet(7, len(tg)), qnet(8, len(cg))
    opts = [torch.optim.Adam(n.parameters(), lr=5e-5) for n in (thread_net, call_net)]
    ratios = []
    start = time.perf_counter()
    for epoch in range(a.epochs):
        eps = 1.0 + (0.05 - 1.0) * min(epoch / max(a.epochs * 0.4, 1.0), 1.0)
        idx = rng.integers(0, len(rules), a.interactions)
        s1 = torch.from_numpy(rules_n[idx])
        with torch.no_grad():
            t_act = thread_net(s1).argmax(1).numpy()
        explore = rng.random(a.interactions) < eps
        t_act = np.where(explore, rng.integers(0, len(tg), a.interactions), t_act)
        tv = (np.asarray(tg, dtype=np.float32)[t_act] - t_mean) / t_std
        s2 = torch.from_numpy(np.concatenate([rules_n[idx], tv[:, None].astype(np.float32)], axis=1))
        with torch.no_grad():
            c_act = call_net(s2).argmax(1).numpy()
        explore = rng.random(a.interactions) < eps
        c_act = np.where(explore, rng.integers(0, len(cg), a.interactions), c_act)
        r = table[idx, t_act, c_act]
        rand = table[idx, rng.integers(0, len(tg), a.interactions), rng.integers(0, len(cg), a.interactions)]
        ratios.append(r.sum() / rand.sum())
        target = torch.from_numpy((r / scale).astype(np.float32))
        for net, opt, x, act in ((thread_net, opts[0], s1, t_act), (call_net, opts[1], s2, c_act)):
            act_t = torch.from_numpy(act)
            for j in range(0, a.interactions, 100):
                q = net(x[j:j + 100]).gather(1, act_t[j:j + 100, None]).squeeze(1)
                loss = ((q - target[j:j + 100]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
    seconds = time.perf_counter() - start
    roll = np.convolve(ratios, np.ones(25) / 25, mode="valid") if len(ratios) >= 25 else [np.mean(ratios)]
    print(json.dumps({"seconds": seconds, "epochs": a.epochs, "torch_threads": torch.get_num_threads(),
                      "torch": torch.__version__, "sim_ratio": float(np.max(roll)),
                      "optimum_ratio": float(opt_row[idx].sum() / rand.sum())}))


if __name__ == "__main__":
    main()
