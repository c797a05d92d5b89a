#!/usr/bin/env python3
"""A stand-in for `kubectl` that answers `mesh collect`'s calls from the local lab, so the
backend above kubectl runs end to end against real Envoy sidecars, the real filter and a real
upstream (trainer/tests/own_service/mesh.rs). Each command line `mesh collect` issues is appended to
$SHIM_CALLS as it was given; each is translated to what it would do in a cluster:

  --context C -n N get namespace N -o name              -> namespace/N
  --context C -n N get wasmplugin sfr2l-filter -o jsonpath={.spec.sha256}
                                                        -> $SHIM_FILTER_SHA256 (the lab's filter)
  --context C -n N apply -f -                           -> sfr2l lab apply (the DestinationRule and
                                                           WasmPlugin documents it was given)
  ... exec deploy/fortio -c istio-proxy -- pilot-agent request GET PATH
                                                        -> GET PATH on the client Envoy's admin
  ... exec deploy/fortio -c fortio -- fortio load ARGS URL
                                                        -> sfr2l load ARGS on the lab's client
                                                           listener (URL's path kept)
  ... logs deploy/fortio -c istio-proxy --since=Ns      -> the client Envoy's log (nothing with
                                                           $SHIM_LOSE_LOGS set)
"""
import os
import subprocess
import sys
import urllib.parse
import urllib.request

env = os.environ
args = sys.argv[1:]
with open(env["SHIM_CALLS"], "a") as f:
    f.write(" ".join(args) + "\n")
if args[:1] != ["--context"] or args[2:3] != ["-n"]:
    sys.exit("shim: expected --context C -n N first, got " + " ".join(args))
rest = args[4:]
if rest[:2] == ["get", "namespace"]:
    print("namespace/" + rest[2])
elif rest[:3] == ["get", "wasmplugin", "sfr2l-filter"]:
    sys.stdout.write(env.get("SHIM_FILTER_SHA256", ""))
elif rest[:3] == ["apply", "-f", "-"]:
    path = os.path.join(env["SHIM_LAB"], "shim-apply.yaml")
    with open(path, "w") as f:
        f.write(sys.stdin.read())
    r = subprocess.run([env["SHIM_SFR2L"], "lab", "apply", "--dir", env["SHIM_LAB"], path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
elif rest[:1] == ["exec"] and rest[3] == "istio-proxy" and rest[5:8] == ["pilot-agent", "request", "GET"]:
    url = "http://127.0.0.1:%s/%s" % (env["SHIM_ADMIN"], rest[8])
    sys.stdout.write(urllib.request.urlopen(url, timeout=10).read().decode())
elif rest[:1] == ["exec"] and rest[3] == "fortio" and rest[5:7] == ["fortio", "load"]:
    load = rest[7:]
    url = urllib.parse.urlsplit(load[-1])
    local = "http://127.0.0.1:%s%s" % (env["SHIM_LISTENER"], url.path)
    mapped = []
    i = 0
    while i < len(load) - 1:
        a = load[i]
        if a in ("-c", "-n", "-H"):
            mapped += [a, load[i + 1]]
            i += 2
        elif a == "-qps":
            mapped += ["--qps", load[i + 1]]
            i += 2
        elif a == "-json":
            mapped += ["--json"]
            i += 2  # fortio's `-json -`: the file name is stdout
        else:
            sys.exit("shim: fortio flag %r not mapped" % a)
    r = subprocess.run([env["SHIM_SFR2L"], "load"] + mapped + [local], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
    sys.stdout.write(r.stdout)
elif rest[:1] == ["logs"] and rest[2:4] == ["-c", "istio-proxy"]:
    if env.get("SHIM_LOSE_LOGS"):  # a sidecar whose log never shows the run (rotated, lost)
        sys.exit(0)
    with open(os.path.join(env["SHIM_LAB"], "logs/client-envoy.log")) as f:
        sys.stdout.write(f.read())
else:
    sys.exit("shim: no translation for " + " ".join(args))
