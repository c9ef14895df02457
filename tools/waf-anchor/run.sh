#!/usr/bin/env bash
# The anchor side by side: the screening evaluation corpus through nginx + ModSecurity v3 +
# OWASP CRS 3.3.4 (Debian packages, paranoia level 1), beside api-guard's own figures.
# Loopback only; not part of `make test`. Usage: bash tools/waf-anchor/run.sh (as root for
# apt-get; `make waf-anchor` runs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK=$ROOT/target/waf-anchor
mkdir -p "$WORK"

if ! dpkg -s nginx libnginx-mod-http-modsecurity modsecurity-crs >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    nginx libnginx-mod-http-modsecurity modsecurity-crs
fi

# The corpus and api-guard's column.
if [ ! -f target/screening-corpus/corpus.jsonl ]; then
  bash tools/screening-corpus/fetch.sh
  target/screening-sources/tools-venv/bin/python tools/screening-corpus/generate.py
fi
cargo run -q -p integration-tests --release --bin screening-eval -- --summary "$WORK/api-guard.json" > "$WORK/screening-eval.txt"

# ModSecurity: Debian's recommended base with the engine on (it ships DetectionOnly), no
# audit log, then CRS as its package's owasp-crs.load loads it (libmodsecurity 3 has no
# IncludeOptional, so the files are included directly; crs-setup.conf: paranoia level 1,
# anomaly scoring with inbound threshold 5).
cat > "$WORK/modsec-main.conf" <<EOF
Include /etc/nginx/modsecurity.conf
SecRuleEngine On
SecAuditEngine Off
SecResponseBodyAccess Off
Include /etc/modsecurity/crs/crs-setup.conf
Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
Include /usr/share/modsecurity-crs/rules/*.conf
Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
EOF

conf() { # name port backend_port modsecurity(on|off)
  cat > "$WORK/$1.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes 1;
daemon on;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log error;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $WORK/$1-body;
  proxy_temp_path $WORK/$1-proxy;
  fastcgi_temp_path $WORK/$1-fcgi;
  uwsgi_temp_path $WORK/$1-uwsgi;
  scgi_temp_path $WORK/$1-scgi;
  server {
    listen 127.0.0.1:$2;
    modsecurity $4;
    modsecurity_rules_file $WORK/modsec-main.conf;
    # proxy_pass, not \`return\`: a \`return\` answers before ModSecurity's access phase.
    location / { proxy_pass http://127.0.0.1:$3; }
  }
  server {
    listen 127.0.0.1:$3;
    location / { return 200 "ok"; }
  }
}
EOF
}
conf waf 18481 18482 on
conf plain 18483 18484 off

stop() {
  for n in waf plain; do
    if [ -f "$WORK/$n.pid" ]; then
      nginx -c "$WORK/$n.conf" -s stop 2>/dev/null || true
    fi
  done
}
trap stop EXIT
stop
nginx -t -c "$WORK/waf.conf" -q
nginx -c "$WORK/waf.conf"
nginx -c "$WORK/plain.conf"
sleep 1
worker() { pgrep -P "$(cat "$WORK/$1.pid")" | head -1; }
python3 tools/waf-anchor/anchor.py 18481 "$(worker waf)" 18483 "$(worker plain)" "$WORK/api-guard.json" | tee "$WORK/table.md"
