#!/usr/bin/env python3
"""Structure check of the filter crate (`make structure`, part of `make test`).

Builds the import graph of `filter/src`: one node per module file, an edge A -> B when A names
B through `use` or an inline path (`crate::b::...`, `super::...`, `self::...`; code under
`#[cfg(test)]` does not count). Then it fails on

  - an upward import: a module importing one of a higher layer (LAYERS below: core types at the
    bottom, checks and feature modules above them, the pipeline above those, the host on top);
  - an import cycle: an edge between two modules that reach each other;
  - `allow(unsafe_code)` anywhere but `host/abi.rs` (the crate's only unsafe code);

unless the edge is one of today's known ones, listed in `baseline.txt` next to this script.
The baseline may only shrink: an edge listed there that is no longer an upward import or part of
a cycle fails the check too, so whoever removes one also removes its line. The size of the
baseline is printed on every run.

Usage: check.py [--root DIR] [--shrink-baseline] [--graph]
  --shrink-baseline  deletes the lines of fixed edges from baseline.txt (it never adds one; only
                     a missing baseline is written whole)
  --graph            prints every import edge
"""

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Layer of each top-level module of filter/src, bottom (0) to top. A module may import its own
# layer and the layers below; which same-layer imports are fine is the cycle check's business.
LAYERS = {
    # core types: what a request is, why it was refused, what was decided, clock, digests
    "rejection": 0, "verdict": 0, "request": 0, "time": 0, "digest": 0, "cidr": 0,
    # the shared-data port, its in-memory store and the probed slot table (store/)
    "store": 0,
    # checks and feature modules, and the compiled configuration they make up
    "checks": 1, "jwt": 1, "introspect": 1, "remote": 1, "payload": 1, "screening": 1, "ratelimit": 1,
    "route": 1, "policy": 1, "config": 1, "metrics": 1, "response": 1, "edits": 1, "abuse": 1, "decision_record": 1,
    # runs a policy's checks; the request lifecycle around it (the lead's lifecycle.rs)
    "pipeline": 2, "lifecycle": 2,
    # the proxy-wasm adapter
    "host": 3,
}
LAYER_NAMES = ["core", "checks/features", "pipeline", "host"]
UNSAFE_ALLOWED = {"host/abi.rs"}
# One layout for unit tests: a module's tests are its `#[cfg(test)] mod tests`, inline or in
# `<module>/tests.rs` (a module with several groups of tests nests them inside `tests`). The
# exceptions that predated the rule are gone; the set stays empty.
TEST_MODULES_ELSEWHERE = set()


# ---- reading Rust source -------------------------------------------------------------------

def strip_literals_and_comments(text):
    """The source with comments removed and string/char literal contents blanked, so braces,
    `;` and paths inside them are not mistaken for code. Lengths are not preserved."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif re.match(r'(?:b|c)?r#*"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(?:b|c)?r(#*)"', text[i:])
            hashes = m.group(1)
            end = text.find('"' + hashes, i + m.end())
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"' or (c in "bc" and text.startswith('"', i + 1) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
            i = text.index('"', i) + 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}') or a lifetime ('a): only the former closes.
            m = re.match(r"'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def item_end(code, start):
    """Index just past the item starting at `start`: its `;`, or its `{...}` block."""
    depth = 0
    is_use = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?use\b", code[start:]) is not None
    i = start
    while i < len(code):
        c = code[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and c == "}" and not is_use:
                return i + 1
        elif c == ";" and depth == 0:
            return i + 1
        i += 1
    return len(code)


CFG_TEST = re.compile(r"#\[cfg\(test\)\]")


def remove_test_code(code):
    """The code without items under `#[cfg(test)]`, and the names of `#[cfg(test)] mod x;`
    declarations (files that are test code)."""
    test_files = []
    while True:
        m = CFG_TEST.search(code)
        if not m:
            return code, test_files
        start = m.end()
        # Further attributes may follow before the item.
        while True:
            a = re.match(r"\s*#\[", code[start:])
            if not a:
                break
            start = _attr_end(code, start + a.end() - 2)
        decl = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*[;{]", code[start:])
        if decl:
            test_files.append(decl.group(1))
        code = code[:m.start()] + code[item_end(code, start):]


def _attr_end(code, hash_at):
    """Index just past the attribute `#[...]` starting at `hash_at`."""
    depth, i = 0, code.index("[", hash_at)
    while i < len(code):
        if code[i] == "[":
            depth += 1
        elif code[i] == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(code)


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}, self}` -> [[a, b], [a, c, d], [a, c, e], [a]]."""
    tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
    return _expand(re.sub(r"\s+", "", tree))


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur:
        parts.append(cur)
    return parts


def _expand(s):
    if "{" not in s:
        segs = [x for x in s.split("::") if x and x != "*"]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        return [segs]
    brace = s.index("{")
    prefix = [x for x in s[:brace].split("::") if x]
    inner = s[brace + 1:s.rindex("}")]
    out = []
    for part in _split_top(inner):
        for rest in _expand(part):
            out.append(prefix + rest)
    return out


USE = re.compile(r"\buse\s+([^;]+);")
INLINE = re.compile(r"(?<![A-Za-z0-9_:])((?:crate|super|self)(?:\s*::\s*(?:[A-Za-z_][A-Za-z0-9_]*))+)")


def referenced_paths(code, children=()):
    """Every path the code names that starts at `crate`, `super`, `self` or one of the module's
    own child modules (`children`: a relative path, as in `mod keys; ... keys::parse()`).
    Relative paths come back with a leading `self`."""
    paths = []
    for m in USE.finditer(code):
        for segs in expand_use_tree(m.group(1)):
            if segs and segs[0] in ("crate", "super", "self"):
                paths.append(segs)
            elif segs and segs[0] in children:
                paths.append(["self"] + segs)
    rest = USE.sub(";", code)
    for m in INLINE.finditer(rest):
        paths.append(re.sub(r"\s+", "", m.group(1)).split("::"))
    if children:
        relative = re.compile(r"(?<![A-Za-z0-9_:])(" + "|".join(sorted(children)) + r")\s*::")
        for m in relative.finditer(rest):
            paths.append(["self", m.group(1)])
    return paths


# ---- the module graph ----------------------------------------------------------------------

def module_files(src):
    """{module path (tuple): relative file} for every .rs file under src except lib.rs."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src).replace(os.sep, "/")
            if rel == "lib.rs":
                continue
            parts = rel[:-3].split("/")
            if parts[-1] == "mod":
                parts = parts[:-1]
            out[tuple(parts)] = rel
    return out


def resolve(module, path, known, is_dir_module):
    """The module file a path starting at crate/super/self names (longest known prefix)."""
    head, rest = path[0], path[1:]
    if head == "crate":
        base = []
    elif head == "self":
        base = list(module)
    else:
        base = list(module)
        while rest is not None and head == "super":
            if not base:
                return None
            base = base[:-1]
            if rest and rest[0] == "super":
                head, rest = rest[0], rest[1:]
            else:
                break
    full = base + list(rest)
    for k in range(len(full), 0, -1):
        if tuple(full[:k]) in known:
            return tuple(full[:k])
    return None


def build_graph(src):
    files = module_files(src)
    known = set(files)
    test_modules = set()
    code_of = {}
    for module, rel in files.items():
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            raw = f.read()
        code, tests = remove_test_code(strip_literals_and_comments(raw))
        code_of[module] = (code, raw)
        for name in tests:
            test_modules.add(module + (name,))
    # Declared under #[cfg(test)] (and everything below them): test code, not part of the graph.
    def is_test(m):
        return any(m[:k] in test_modules for k in range(1, len(m) + 1))
    edges = set()
    for module, (code, _) in code_of.items():
        if is_test(module):
            continue
        children = {m[-1] for m in known if len(m) == len(module) + 1 and m[:-1] == module}
        for path in referenced_paths(code, children):
            target = resolve(module, path, known, files[module].endswith("mod.rs"))
            if target and target != module and not is_test(target):
                edges.add((module, target))
    unsafe_allows = sorted(
        files[m] for m, (_, raw) in code_of.items()
        if re.search(r"allow\s*\(\s*unsafe_code\s*\)", strip_literals_and_comments(raw))
    )
    nodes = sorted(m for m in files if not is_test(m))
    test_names = sorted("::".join(m) for m in test_modules)
    return nodes, edges, files, unsafe_allows, test_names


def strongly_connected(nodes, edges):
    """Tarjan's algorithm: the list of components (sets of nodes)."""
    succ = {n: [] for n in nodes}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative, so deep graphs cannot hit Python's recursion limit.
        work = [(v, iter(sorted(succ.get(v, []))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(succ.get(w, [])))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                comps.append(comp)

    for n in sorted(succ):
        if n not in index:
            visit(n)
    return comps


def name(module):
    return "::".join(module)


def layer(module):
    return LAYERS.get(module[0])


def findings(nodes, edges):
    """(bad edges as 'kind a -> b' lines, unknown top-level modules)."""
    unknown = sorted({m[0] for m in nodes if m[0] not in LAYERS})
    bad = set()
    for a, b in edges:
        la, lb = layer(a), layer(b)
        if la is not None and lb is not None and la < lb:
            bad.add(f"upward {name(a)} -> {name(b)}")
    for comp in strongly_connected(nodes, edges):
        if len(comp) > 1:
            for a, b in edges:
                if a in comp and b in comp:
                    bad.add(f"cycle {name(a)} -> {name(b)}")
    return sorted(bad), unknown


def read_baseline(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


BASELINE_HEADER = """\
# Known structural debts of filter/src (issue 18), one per line. This list may only shrink: the
# check fails on an edge not listed here, and on a listed edge that is gone (delete its line, or
# run `tools/structure-check/check.py --shrink-baseline`, which never adds one).
#   upward A -> B   A (lower layer) imports B (higher layer)
#   cycle A -> B    A imports B, and B reaches A again through imports
"""


def check(src, baseline, test_exceptions=frozenset(TEST_MODULES_ELSEWHERE)):
    """(failures, summary line, current known-bad edges) for the crate at `src` against the
    baseline lines."""
    nodes, edges, _, unsafe_allows, test_names = build_graph(src)
    bad, unknown = findings(nodes, edges)
    failures = []
    if unknown:
        failures.append("top-level modules without a layer (add them to LAYERS in "
                        f"tools/structure-check/check.py): {', '.join(unknown)}")
    stray_unsafe = [f for f in unsafe_allows if f not in UNSAFE_ALLOWED]
    if stray_unsafe:
        failures.append("allow(unsafe_code) outside host/abi.rs: " + ", ".join(stray_unsafe))
    misnamed = [m for m in test_names if not m.endswith("::tests")
                and m != "tests" and m not in test_exceptions]
    if misnamed:
        failures.append("test modules are named `tests` (inline, or <module>/tests.rs): "
                        + ", ".join(misnamed))
    stale = sorted(set(test_exceptions) - set(test_names))
    if stale:
        failures.append("renamed, now remove from TEST_MODULES_ELSEWHERE: " + ", ".join(stale))
    new = [l for l in bad if l not in baseline]
    gone = [l for l in baseline if l not in bad]
    if new:
        failures.append("new upward imports or import cycles (layers, bottom to top: "
                        + " < ".join(LAYER_NAMES) + "):\n  " + "\n  ".join(new))
    if gone:
        failures.append("fixed, now remove from tools/structure-check/baseline.txt:\n  "
                        + "\n  ".join(gone))
    cycles = sorted(len(c) for c in strongly_connected(nodes, edges) if len(c) > 1)
    upward = sum(1 for l in bad if l.startswith("upward"))
    summary = (f"structure: {len(nodes)} modules, {len(edges)} imports; {upward} upward imports, "
               f"cycles of {cycles or 'no'} modules; baseline: {len(baseline)} known edges")
    return failures, summary, bad


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=os.path.normpath(os.path.join(HERE, "..", "..")))
    parser.add_argument("--baseline", default=os.path.join(HERE, "baseline.txt"))
    parser.add_argument("--shrink-baseline", action="store_true")
    parser.add_argument("--graph", action="store_true", help="print every edge")
    args = parser.parse_args()
    src = os.path.join(args.root, "filter", "src")
    if args.graph:
        _, edges, _, _, _ = build_graph(src)
        for a, b in sorted(edges):
            print(f"{name(a)} -> {name(b)}")
    if args.shrink_baseline:
        _, _, bad = check(src, [])
        if os.path.exists(args.baseline):
            bad = [l for l in read_baseline(args.baseline) if l in bad]
        with open(args.baseline, "w", encoding="utf-8") as f:
            f.write(BASELINE_HEADER + "".join(l + "\n" for l in bad))
        print(f"structure: {len(bad)} known edges in {args.baseline}")
    failures, summary, _ = check(src, read_baseline(args.baseline))
    print(summary)
    if failures:
        print("structure check FAILED:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
