#!/usr/bin/env python3
"""Builds the stage probes of `make bench-stages`: copies of api_guard.wasm that stop after one
stage of the request path, so that the benchmark can price each stage inside Envoy by
difference (module N+1 minus module N).

The probes are built from a scratch copy of HEAD (a detached git worktree in a temporary
directory) with `filter/src/host/http.rs` edited there: the working tree and the production
module are never touched, and no probe switch exists in the shipped code (a build that
enforces nothing must not be one environment variable away). Each edit must match the source
exactly; when http.rs changes so that an edit no longer applies, the build fails and names it.

Stages, in request order (each probe does everything of the previous ones):
  noop       the filter is in the chain, on_request_headers returns Continue at once
  headers    + reads every request header (one host call, decoded into the request view)
  meta       + reads the route metadata (the policy name)
  facts      + reads the client address and the clock
  decide     + runs the decision (rate-limit store calls included), applies nothing
  bodywait   everything up to the body: headers applied, body held and buffered, not read
  bodyread   + reads the buffered body, does not check it
The full module adds the body checks (schema, screening) and counts the decision.

Usage: tools/stage-probes/build.py <output dir>   (writes <output dir>/probe-<stage>.wasm)
"""

import os
import shutil
import subprocess
import sys
import tempfile

HTTP_RS = "filter/src/host/http.rs"
# The export lists of the Makefile (`make bench-stages` passes them), so a probe exports exactly
# the callbacks api_guard.wasm does.
UNUSED = os.environ.get("UNUSED_CALLBACKS", "")
REQUIRED = os.environ.get("REQUIRED_CALLBACKS", "")


def stop(stage):
    return f'if option_env!("API_GUARD_STAGE") == Some("{stage}") {{ return Action::Continue; }}\n'


# (anchor in http.rs, text inserted before it)
EDITS = [
    ("        self.end_of_stream = end_of_stream;\n        self.run(true)",
     "        " + stop("noop")),
    ("        // Route metadata is operator-controlled",
     "        " + stop("headers")),
    ("        // Only policies with IP rules or IP-keyed limits read the address",
     "        " + stop("meta")),
    ("        let view = RequestView {\n            headers: &headers,",
     "        " + stop("facts")),
    ("        let request_id = request_id(&headers);\n        if !events.rate_limits.is_empty()",
     "        " + stop("decide")),
    ("        } else if pending.check.buffer {\n            match abi::request_body(body_size) {",
     '        } else if pending.check.buffer && option_env!("API_GUARD_STAGE") == Some("bodywait") {\n'
     "            Ok(())\n"
     '        } else if pending.check.buffer && option_env!("API_GUARD_STAGE") == Some("bodyread") {\n'
     "            abi::request_body(body_size).map(|_| ()).map_err(|_| Rejection::HostFailure)\n"),
]
STAGES = ["noop", "headers", "meta", "facts", "decide", "bodywait", "bodyread"]


def run(cmd, cwd, env=None):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if not UNUSED or not REQUIRED:
        sys.exit("stage-probes: set UNUSED_CALLBACKS and REQUIRED_CALLBACKS (make bench-stages does)")
    out = os.path.abspath(sys.argv[1])
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=True).stdout.strip()
    os.makedirs(out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="api-guard-probes-")
    tree = os.path.join(scratch, "src")
    run(["git", "worktree", "add", "--detach", "--quiet", tree, "HEAD"], cwd=root)
    try:
        path = os.path.join(tree, HTTP_RS)
        with open(path) as f:
            source = f.read()
        for anchor, inserted in EDITS:
            if source.count(anchor) != 1:
                sys.exit(f"stage-probes: {HTTP_RS} changed; this anchor no longer matches once:\n{anchor}")
            source = source.replace(anchor, inserted + anchor)
        with open(path, "w") as f:
            f.write(source)
        # The probes share one target directory under the real tree's target/, so rebuilding
        # them is incremental.
        target = os.path.join(root, "target", "stage-probes")
        for stage in STAGES:
            env = dict(os.environ, API_GUARD_STAGE=stage, CARGO_TARGET_DIR=target)
            run(["cargo", "build", "-q", "-p", "api-guard", "--target", "wasm32-wasip1",
                 "--release"], cwd=tree, env=env)
            module = os.path.join(out, f"probe-{stage}.wasm")
            shutil.copyfile(os.path.join(target, "wasm32-wasip1", "release", "api_guard.wasm"),
                            module)
            run(["cargo", "run", "-q", "-p", "wasm-trim", "--release", "--", "--drop", UNUSED,
                 "--require", REQUIRED, module], cwd=root)
    finally:
        run(["git", "worktree", "remove", "--force", tree], cwd=root)
        shutil.rmtree(scratch, ignore_errors=True)
    print(",".join(os.path.join(out, f"probe-{s}.wasm") for s in STAGES))


if __name__ == "__main__":
    main()
