#!/usr/bin/env python3
"""Builds the stage probes of `make bench-stages`: builds of api_guard.wasm that stop after one
stage of the request path, so that the benchmark can price each stage inside Envoy by
difference (module N+1 minus module N).

A probe is the module built with the cargo feature `stage-probes` and API_GUARD_STAGE=<stage>
(filter/src/host/probe.rs says where each stage stops). Without the feature the probe code is
not compiled, so the shipped module has no probe switch (a build that enforces nothing must not
be one environment variable away). The probes get their own target directory, so building them
never touches the production module.

Stages, in request order (each probe does everything of the previous ones):
  noop       the filter is in the chain, on_request_headers returns Continue at once
  headers    + reads every request header (one host call, decoded into the request view)
  meta       + reads the route metadata (the policy name) and selects the policy
  facts      + reads the client address (if the policy needs it) and the clock
  decide     + runs the decision (rate-limit store calls included), applies nothing
  bodywait   everything up to the body: headers applied, body held and buffered, not read
  bodyread   + reads the buffered body, does not check it
The full module adds the body checks (schema, screening).
Not built by default (PROBE_STAGES=bodyread,bodytwice builds it, with the probe to compare it to):
  bodytwice  the full module checking every body twice (the second check runs warm)

Usage: tools/stage-probes/build.py <output dir>   (writes <output dir>/probe-<stage>.wasm and
prints their paths, comma-separated, on the last line)
"""

import os
import shutil
import subprocess
import sys

# The export lists of the Makefile (`make bench-stages` passes them), so a probe exports exactly
# the callbacks api_guard.wasm does.
UNUSED = os.environ.get("UNUSED_CALLBACKS", "")
REQUIRED = os.environ.get("REQUIRED_CALLBACKS", "")
STAGES = ["noop", "headers", "meta", "facts", "decide", "bodywait", "bodyread"]
KNOWN = STAGES + ["bodytwice"]


def run(cmd, cwd, env=None):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if not UNUSED or not REQUIRED:
        sys.exit("stage-probes: set UNUSED_CALLBACKS and REQUIRED_CALLBACKS (make bench-stages does)")
    stages = [s for s in os.environ.get("PROBE_STAGES", ",".join(STAGES)).split(",") if s]
    unknown = [s for s in stages if s not in KNOWN]
    if unknown:
        sys.exit(f"stage-probes: unknown stage(s) {unknown}; known: {KNOWN}")
    out = os.path.abspath(sys.argv[1])
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=True).stdout.strip()
    os.makedirs(out, exist_ok=True)
    # One target directory for every probe, under the real tree's target/: rebuilding them is
    # incremental (cargo tracks API_GUARD_STAGE, which the build reads with option_env!).
    target = os.path.join(root, "target", "stage-probes")
    for stage in stages:
        env = dict(os.environ, API_GUARD_STAGE=stage, CARGO_TARGET_DIR=target)
        run(["cargo", "build", "-q", "-p", "api-guard", "--features", "stage-probes",
             "--target", "wasm32-wasip1", "--release"], cwd=root, env=env)
        module = os.path.join(out, f"probe-{stage}.wasm")
        shutil.copyfile(os.path.join(target, "wasm32-wasip1", "release", "api_guard.wasm"),
                        module)
        run(["cargo", "run", "-q", "-p", "wasm-trim", "--release", "--", "--drop", UNUSED,
             "--require", REQUIRED, module], cwd=root)
    print(",".join(os.path.join(out, f"probe-{s}.wasm") for s in stages))


if __name__ == "__main__":
    main()
