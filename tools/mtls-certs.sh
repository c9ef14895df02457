#!/usr/bin/env bash
# Test certificates for mTLS client identity (envoy/mtls.yaml, integration-tests/tests/mtls.rs):
# a client CA, and client certificates it signs: one with a SPIFFE URI SAN, one with a DNS SAN,
# one with no SAN at all (identified by its SHA-256), one with an unknown SPIFFE id; plus a
# client certificate from another CA, which Envoy must refuse in the handshake.
# Usage: tools/mtls-certs.sh <directory>   (made with openssl; test-only keys, never reused)
set -euo pipefail
dir=${1:?usage: $0 <directory>}
mkdir -p "$dir"
cd "$dir"
days=30
ca() { # name subject
  openssl req -x509 -newkey rsa:2048 -nodes -days $days -subj "$2" \
    -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
client() { # name ca subject [subjectAltName]
  local ext=()
  if [ -n "${4:-}" ]; then
    printf 'subjectAltName=%s\n' "$4" > "$1.ext"
    ext=(-extfile "$1.ext")
  fi
  openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days $days \
    -out "$1.crt" "${ext[@]}" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "/CN=api-guard test client CA"
ca other-ca "/CN=another CA"
client checkout ca "/CN=checkout" "URI:spiffe://example.org/ns/shop/sa/checkout"
client billing ca "/CN=billing" "DNS:billing.internal.example"
client batch ca "/CN=batch"
client stranger ca "/CN=stranger" "URI:spiffe://example.org/ns/other/sa/stranger"
client outsider other-ca "/CN=outsider" "URI:spiffe://example.org/ns/shop/sa/checkout"
