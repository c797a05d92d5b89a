#!/usr/bin/env python3
"""Rank correlations (Spearman, ties averaged) of the nine inputs with QPS, the 503 rate and the
reward QPS x P503, per dataset: the table in data/README.md. Usage: scripts/rank_corr.py data/s*.csv"""
import csv, sys, statistics as st
def ranks(v):
    idx=sorted(range(len(v)), key=lambda i:v[i]); r=[0]*len(v); i=0
    while i<len(v):
        j=i
        while j+1<len(v) and v[idx[j+1]]==v[idx[i]]: j+=1
        for k in range(i,j+1): r[idx[k]]=(i+j)/2
        i=j+1
    return r
def corr(a,b):
    ma,mb=st.mean(a),st.mean(b)
    num=sum((x-ma)*(y-mb) for x,y in zip(a,b)); den=(sum((x-ma)**2 for x in a)*sum((y-mb)**2 for y in b))**.5
    return num/den if den else float('nan')
for p in sys.argv[1:]:
    rows=list(csv.DictReader(open(p)))
    cols=list(rows[0].keys()); cols=cols[:cols.index('qps')]
    # The failure rate: rate_503, or named by the study's failure codes (rate_429_503).
    rc=next(c for c in rows[0] if c.startswith('rate_') and c!='rate_200')
    q=ranks([float(r['qps']) for r in rows]); f=ranks([float(r[rc]) for r in rows])
    rw=ranks([float(r['qps'])*float(r[rc]) for r in rows])
    out=[]
    for c in cols:
        v=[float(r[c]) for r in rows]
        if len(set(v))<2: continue
        rv=ranks(v)
        out.append((c, corr(rv,q), corr(rv,f), corr(rv,rw)))
    print(p, ' '.join(f"{c}: q {a:+.2f} / 503 {b:+.2f} / r {d:+.2f};" for c,a,b,d in out))
