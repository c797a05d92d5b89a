#!/usr/bin/env python3
"""A straightforward PyTorch version of `sfr2l rl learn --config thread-call --services 5` (the
collaborative Thread-Call*5 cell of Table 5) on one dataset, for the speed comparison in
`make bench` (optional: needs torch, e.g. in bench/.venv-torch).

Same protocol and networks as the Rust trainer: five services on copies of the dataset's
simulator, each drawing its own rows every epoch; two agents (threads, then calls, which sees
the chosen threads), each a shared trunk state -> 512 -> 512 (SNet) and one head per service
512 -> 512 -> actions (PNet); epsilon-greedy 1.0 -> 0.05 over the first 40% of epochs; rewards
QPS x P503 from the exported simulator, evaluated once for every (row, threads, calls) with
onnxruntime and looked up; eq. 8 targets (own reward + beta x the services' mean reward, over the
reward scale); Adam lr 1e-5; mini-batches of 100 per service over each epoch's 1,000
interactions, all services' rows through the trunk in one product (as the Rust trainer does).
Acting puts all five services' states through the trunk at once. The Rust side also computes
the greedy policy's choices for its report (an extra forward on the rows where the first agent
explored); this script does not, so it does slightly less work.

usage: pytorch_collab.py --sim policies/s1 --data data/s1.csv --epochs 10 [--threads N]
Prints one JSON line: seconds of the training loop (table build excluded), ratio figures.
"""
import argparse, json, time

import numpy as np
import torch

from pytorch_thread_call import problem


def mlp(widths):
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


class CollabQ(torch.nn.Module):
    """SNet trunk (ReLU on its output) shared by the services, one PNet head per service."""

    def __init__(self, d_in, actions, services, hidden=512):
        super().__init__()
        self.trunk = mlp([d_in, hidden, hidden])
        self.heads = torch.nn.ModuleList(mlp([hidden, hidden, actions]) for _ in range(services))

    def forward(self, xs):
        """xs: one [rows, d_in] tensor per service -> one [rows, actions] per service."""
        h = torch.relu(self.trunk(torch.cat(xs, 0)))
        out, start = [], 0
        for head, x in zip(self.heads, xs):
            out.append(head(h[start:start + len(x)]))
            start += len(x)
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", default="policies/s1")
    ap.add_argument("--data", default="data/s1.csv")
    ap.add_argument("--profile", default="s1")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--interactions", type=int, default=1000)
    ap.add_argument("--services", type=int, default=5)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    rules, rules_n, tg, cg, table, scale, t_mean, t_std = problem(a)
    n_svc, inter = a.services, a.interactions

    nets = [CollabQ(7, len(tg), n_svc), CollabQ(8, len(cg), n_svc)]
    opts = [torch.optim.Adam(n.parameters(), lr=1e-5) for n in nets]
    ratios = []

    def choose(net, xs, n_actions, eps):
        with torch.no_grad():
            greedy = [q.argmax(1).numpy() for q in net(xs)]
        out = []
        for g in greedy:
            explore = rng.random(inter) < eps
            out.append(np.where(explore, rng.integers(0, n_actions, inter), g))
        return out

    start = time.perf_counter()
    for epoch in range(a.epochs):
        eps = 1.0 + (0.05 - 1.0) * min(epoch / max(a.epochs * 0.4, 1.0), 1.0)
        idx = [rng.integers(0, len(rules), inter) for _ in range(n_svc)]
        s1 = [torch.from_numpy(rules_n[i]) for i in idx]
        t_act = choose(nets[0], s1, len(tg), eps)
        s2 = []
        for i, t in zip(idx, t_act):
            tv = ((np.asarray(tg, dtype=np.float32)[t] - t_mean) / t_std).astype(np.float32)
            s2.append(torch.from_numpy(np.concatenate([rules_n[i], tv[:, None]], axis=1)))
        c_act = choose(nets[1], s2, len(cg), eps)
        r = np.stack([table[i, t, c] for i, t, c in zip(idx, t_act, c_act)])
        rand = sum(table[i, rng.integers(0, len(tg), inter), rng.integers(0, len(cg), inter)].sum() for i in idx)
        ratios.append(r.sum() / rand)
        target = torch.from_numpy(((r + a.beta * r.mean(0, keepdims=True)) / scale).astype(np.float32))
        for net, opt, xs, acts in ((nets[0], opts[0], s1, t_act), (nets[1], opts[1], s2, c_act)):
            acts = [torch.from_numpy(x) for x in acts]
            for j in range(0, inter, 100):
                qs = net([x[j:j + 100] for x in xs])
                loss = sum(((q.gather(1, act[j:j + 100, None]).squeeze(1) - target[n, j:j + 100]) ** 2).mean()
                           for n, (q, act) in enumerate(zip(qs, acts))) / n_svc
                opt.zero_grad()
                loss.backward()
                opt.step()
    seconds = time.perf_counter() - start
    roll = np.convolve(ratios, np.ones(25) / 25, mode="valid") if len(ratios) >= 25 else [np.mean(ratios)]
    print(json.dumps({"seconds": seconds, "epochs": a.epochs, "services": n_svc,
                      "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                      "sim_ratio": float(np.max(roll))}))


if __name__ == "__main__":
    main()
