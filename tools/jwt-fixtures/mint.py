#!/usr/bin/env python3
"""Mint one JWS with a fixture key, for tests that need tokens relative to the real clock.

    .venv/bin/python tools/jwt-fixtures/mint.py KID CLAIMS_JSON

KID is a key of filter/src/jwt/testdata/jws.json (private_keys or hmac_secrets); the algorithm
is the key's (see ALGS). CLAIMS_JSON may use "$now" arithmetic as strings: "$now+60",
"$now-3600". PyJWT signs, not jwt-simple: the tokens test interoperability.
"""
import json
import pathlib
import sys
import time

import jwt

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "filter/src/jwt/testdata/jws.json"
ALGS = {"rsa-1": "RS256", "rsa-pinned": "RS256", "ec-256": "ES256", "ec-384": "ES384",
        "ed-1": "EdDSA", "hmac-1": "HS256"}


def resolve(value, now):
    if isinstance(value, str) and value.startswith("$now"):
        rest = value[4:]
        return now + (int(rest) if rest else 0)
    return value


def main():
    kid, claims = sys.argv[1], json.loads(sys.argv[2])
    fixture = json.loads(FIXTURE.read_text())
    now = int(time.time())
    claims = {k: resolve(v, now) for k, v in claims.items()}
    if kid in fixture["hmac_secrets"]:
        secret = fixture["hmac_secrets"][kid]
        key = jwt.utils.base64url_decode(secret) if isinstance(secret, str) else secret
    else:
        key = fixture["private_keys"][kid]
    print(jwt.encode(claims, key, algorithm=ALGS[kid], headers={"kid": kid}))


if __name__ == "__main__":
    main()
