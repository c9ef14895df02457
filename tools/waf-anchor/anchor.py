#!/usr/bin/env python3
"""Runs the screening evaluation corpus (target/screening-corpus/corpus.jsonl) through
nginx + ModSecurity v3 + OWASP CRS (Debian packages, paranoia level 1, loopback only) and
prints it beside api-guard's figures from `screening-eval --summary`.

Started by tools/waf-anchor/run.sh, which installs the packages and builds the inputs. Not
part of `make test`.

Requests are built as screening-eval builds them: an attack as the query parameter `q`
(percent-encoded where it must be, already-encoded payloads sent as written), a scanner as
`user-agent`; a benign value both as a JSON body `{"v": ...}` and as an encoded `q` (a false
positive if either is refused), whole JSON bodies as a POST, benign user agents as
`user-agent`. "Blocked" is a 403 from ModSecurity; a 400 from nginx's own parser is counted
apart. CPU per request is the nginx worker's user+system time (from /proc) over the run,
minus the same run against an identical server with ModSecurity off.
"""

import http.client
import json
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "target", "screening-corpus", "corpus.jsonl")
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def encode(b):
    return "".join(chr(c) if (chr(c).isalnum() and c < 128) or chr(c) in "-._~" else f"%{c:02X}" for c in b)


def wire(b):
    pre = any(b[i] == 0x25 and all(chr(x) in "0123456789abcdefABCDEF" for x in b[i + 1:i + 3]) and len(b[i + 1:i + 3]) == 2 for i in range(len(b)))
    if not pre:
        return encode(b)
    return "".join(f"%{c:02X}" if c <= 0x20 or c >= 0x7f or chr(c) in "#&+\"<>\\^`{|}" else chr(c) for c in b)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def send(conn, method, path, headers, body=None):
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    except (http.client.HTTPException, OSError):
        conn.close()
        return 0


def run(port, worker_pid, items):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ua = {"user-agent": BROWSER_UA, "accept": "application/json"}
    t0 = cpu_ticks(worker_pid)
    w0 = time.time()
    res = {"attacks": {}, "benign": {}, "requests": 0}
    for it in items:
        payload = it["payload"].encode("utf-8", "surrogateescape")
        cls = it["class"]
        if cls == "benign":
            kind = it.get("kind", "value")
            statuses = []
            if kind == "json_body":
                statuses.append(send(conn, "POST", "/v1/items", dict(ua, **{"content-type": "application/json"}), payload))
            elif kind == "user_agent":
                if b"\n" not in payload and b"\r" not in payload:
                    statuses.append(send(conn, "GET", "/v1/items", {"user-agent": it["payload"], "accept": "application/json"}))
            else:
                body = json.dumps({"v": it["payload"]}, ensure_ascii=False).encode("utf-8", "surrogateescape")
                statuses.append(send(conn, "POST", "/v1/items", dict(ua, **{"content-type": "application/json"}), body))
                statuses.append(send(conn, "GET", "/v1/items?q=" + encode(payload), ua))
            res["requests"] += len(statuses)
            e = res["benign"].setdefault(it["source"], [0, 0])
            e[0] += 1
            e[1] += int(any(s == 403 for s in statuses))
            continue
        if it.get("hard"):
            continue
        if cls == "bad_bot":
            status = send(conn, "GET", "/v1/items", {"user-agent": it["payload"]})
        else:
            status = send(conn, "GET", "/v1/items?q=" + wire(payload), ua)
        res["requests"] += 1
        e = res["attacks"].setdefault(cls, [0, 0, 0])
        e[0] += 1
        e[1] += int(status == 403)
        e[2] += int(status == 400)
    conn.close()
    res["cpu_s"] = (cpu_ticks(worker_pid) - t0) / os.sysconf("SC_CLK_TCK")
    res["wall_s"] = time.time() - w0
    return res


def main():
    port_waf, pid_waf, port_plain, pid_plain, summary = sys.argv[1:6]
    items = [json.loads(l) for l in open(CORPUS, encoding="utf-8")]
    waf = run(int(port_waf), int(pid_waf), items)
    plain = run(int(port_plain), int(pid_plain), items)
    ours = json.load(open(summary))
    print("Public-source corpus, default sensitivity (api-guard `medium`; CRS 3.3.4 paranoia level 1, anomaly threshold 5)")
    print()
    print("| class | payloads | api-guard blocked | nginx + ModSecurity + CRS blocked | (nginx parser 400) |")
    print("|---|---:|---:|---:|---:|")
    for cls in sorted(waf["attacks"]):
        n, b, bad = waf["attacks"][cls]
        o = ours["classes"].get(cls, {"payloads": 0, "blocked": 0})
        pct = lambda x, d: f"{100.0 * x / d:.1f}%" if d else "-"
        print(f"| {cls} | {n} | {pct(o['blocked'], o['payloads'])} | {pct(b, n)} | {bad} |")
    bn = sum(v[0] for v in waf["benign"].values())
    bf = sum(v[1] for v in waf["benign"].values())
    print()
    print("| benign source | values | api-guard false positives | ModSecurity + CRS false positives |")
    print("|---|---:|---:|---:|")
    for src in sorted(waf["benign"]):
        n, f = waf["benign"][src]
        print(f"| {src} | {n} | - | {f} |")
    print(f"| all | {bn} | {ours['benign']['false_positives']} (of {ours['benign']['values']}) | {bf} |")
    reqs = waf["requests"]
    waf_us = 1e6 * (waf["cpu_s"] - plain["cpu_s"]) / max(reqs, 1)
    print()
    print("| CPU per request | api-guard screening (in process, `screen_request`/`screen_body`) | ModSecurity + CRS (nginx worker CPU, minus nginx without ModSecurity) |")
    print("|---|---:|---:|")
    print(f"| mean over {reqs} requests | {ours['ns_per_request'] / 1000:.2f} µs | {waf_us:.1f} µs |")
    print()
    print(f"(nginx worker CPU: {waf['cpu_s']:.2f} s with ModSecurity, {plain['cpu_s']:.2f} s without; clock tick {1 / os.sysconf('SC_CLK_TCK'):.3f} s)")


if __name__ == "__main__":
    main()
