#!/usr/bin/env python3
"""Mint the JWS test fixtures for api-guard's JWT verifier.

Writes filter/src/jwt/testdata/jws.json: a public verification JWKS, the private keys (PEM, so
integration tests can mint more tokens with the same keys), and one named token per case of the
attack table in filter/src/jwt/verify.rs. Expected outcomes live in the Rust table, not here.

Tokens are minted with PyJWT's algorithm implementations (on top of `cryptography`/OpenSSL), an
implementation independent of the Rust side (jwt-simple), so a shared bug cannot hide itself.
Attack tokens that no library would produce (alg "none", duplicate header members, padding...)
are assembled by hand from raw segments and, where a signature matters, signed with the same
PyJWT algorithm objects.

Rerun (from the repository root):
    .venv/bin/pip install -r tools/jwt-fixtures/requirements.txt
    .venv/bin/python tools/jwt-fixtures/mint_jws.py
Everything is deterministic except the generated keys and the randomized signatures (PSS salts,
ECDSA nonces); regenerating changes the file but never the outcome of any case.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm, RSAPSSAlgorithm

ISSUER = "https://issuer.test"
AUDIENCE = "api"
IAT = 1700000000
EXP = 4102444800  # year 2100: nothing in the fixture expires with time
NOW = 1800000000  # the fixed clock the Rust tests use

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "filter", "src", "jwt", "testdata", "jws.json"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def js(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def pem_private(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def pem_public(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


# --- keys ------------------------------------------------------------------------------------

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_pinned = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec256 = ec.generate_private_key(ec.SECP256R1())
ec384 = ec.generate_private_key(ec.SECP384R1())
ec_attacker = ec.generate_private_key(ec.SECP256R1())
ed = ed25519.Ed25519PrivateKey.generate()
hmac_secret = secrets.token_bytes(64)

SIGNERS = {
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "RS384": RSAAlgorithm(RSAAlgorithm.SHA384),
    "RS512": RSAAlgorithm(RSAAlgorithm.SHA512),
    "PS256": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA256),
    "PS384": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA384),
    "PS512": RSAPSSAlgorithm(RSAPSSAlgorithm.SHA512),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
    "ES384": ECAlgorithm(ECAlgorithm.SHA384),
    "EdDSA": OKPAlgorithm(),
    "HS256": HMACAlgorithm(HMACAlgorithm.SHA256),
    "HS384": HMACAlgorithm(HMACAlgorithm.SHA384),
    "HS512": HMACAlgorithm(HMACAlgorithm.SHA512),
}
KEY_FOR = {
    "RS256": rsa_key, "RS384": rsa_key, "RS512": rsa_key,
    "PS256": rsa_key, "PS384": rsa_key, "PS512": rsa_key,
    "ES256": ec256, "ES384": ec384, "EdDSA": ed,
    "HS256": hmac_secret, "HS384": hmac_secret, "HS512": hmac_secret,
}
KID_FOR = {
    "RS256": "rsa-1", "RS384": "rsa-1", "RS512": "rsa-1",
    "PS256": "rsa-1", "PS384": "rsa-1", "PS512": "rsa-1",
    "ES256": "ec-256", "ES384": "ec-384", "EdDSA": "ed-1",
    "HS256": "hmac-1", "HS384": "hmac-1", "HS512": "hmac-1",
}


def public_jwk(alg_obj, key, kid, alg=None, use="sig"):
    jwk = json.loads(alg_obj.to_jwk(key.public_key()))
    jwk = {k: v for k, v in jwk.items() if k not in ("key_ops", "alg")}
    jwk["kid"] = kid
    jwk["use"] = use
    if alg:
        jwk["alg"] = alg
    return jwk


jwks = {
    "keys": [
        # No `alg`: the verifier derives every RS*/PS* algorithm for this key.
        public_jwk(SIGNERS["RS256"], rsa_key, "rsa-1"),
        # `alg` pins the key to RS256: a PS256 token with this kid must find no key.
        public_jwk(SIGNERS["RS256"], rsa_pinned, "rsa-pinned", alg="RS256"),
        public_jwk(SIGNERS["ES256"], ec256, "ec-256", alg="ES256"),
        public_jwk(SIGNERS["ES384"], ec384, "ec-384", alg="ES384"),
        public_jwk(SIGNERS["EdDSA"], ed, "ed-1", alg="EdDSA"),
        {"kty": "oct", "kid": "hmac-1", "use": "sig", "k": b64(hmac_secret)},
    ]
}


# --- minting ---------------------------------------------------------------------------------


def sign_raw(alg, header_bytes: bytes, payload_bytes: bytes, key=None) -> str:
    """header and payload are raw bytes (not necessarily JSON); returns the compact token."""
    signing_input = b64(header_bytes) + "." + b64(payload_bytes)
    signer = SIGNERS[alg]
    prepared = signer.prepare_key(KEY_FOR[alg] if key is None else key)
    sig = signer.sign(signing_input.encode("ascii"), prepared)
    return signing_input + "." + b64(sig)


def claims(**over):
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": IAT, "exp": EXP, "jti": "jti-1"}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def mint(alg="RS256", kid="__default__", payload=None, extra_header=None, key=None, header=None):
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
        if kid == "__default__":
            header["kid"] = KID_FOR.get(alg, "rsa-1")
        elif kid is not None:
            header["kid"] = kid
        header.update(extra_header or {})
    body = js(claims() if payload is None else payload)
    return sign_raw(alg, js(header), body, key)


def unsigned(header: dict, payload=None, signature="c2lnbmF0dXJl"):
    return b64(js(header)) + "." + b64(js(claims() if payload is None else payload)) + "." + signature


tokens = {}

# Every algorithm, valid.
for alg in SIGNERS:
    tokens["valid_" + alg.lower()] = mint(alg)

tokens["valid_scopes"] = mint("ES256", payload=claims(scope="read write", tier="gold", roles=["admin", "dev"],
                                                      org="a", level=3, premium=True))
tokens["valid_scp_array"] = mint("ES256", payload=claims(scp=["read", "write"]))
tokens["valid_typ_at_jwt"] = mint("ES256", header={"alg": "ES256", "typ": "at+jwt", "kid": "ec-256"})
tokens["valid_no_typ"] = mint("ES256", header={"alg": "ES256", "kid": "ec-256"})
tokens["valid_no_kid"] = mint("RS256", kid=None)
tokens["valid_pinned_rs256"] = mint("RS256", kid="rsa-pinned", key=rsa_pinned)

# alg none and friends: a non-empty signature so the alg check is what rejects them.
good_sig = tokens["valid_rs256"].split(".")[2]
for name in ("none", "None", "NONE", "nOnE"):
    tokens["alg_" + name] = unsigned({"alg": name, "typ": "JWT", "kid": "rsa-1"}, signature=good_sig)
tokens["alg_none_empty_sig"] = unsigned({"alg": "none", "typ": "JWT"}, signature="")
tokens["alg_lowercase_rs256"] = unsigned({"alg": "rs256", "typ": "JWT", "kid": "rsa-1"}, signature=good_sig)
tokens["alg_es512"] = unsigned({"alg": "ES512", "typ": "JWT", "kid": "ec-256"}, signature=good_sig)
tokens["alg_missing"] = unsigned({"typ": "JWT", "kid": "rsa-1"}, signature=good_sig)
tokens["alg_not_string"] = unsigned({"alg": ["RS256"], "typ": "JWT", "kid": "rsa-1"}, signature=good_sig)

# Key confusion: HS256 keyed with the RSA public key (PEM text), kid of the RSA key.
rsa_pub_pem = pem_public(rsa_key).encode("ascii")
def hs256_with_secret(secret: bytes, header: dict) -> str:
    si = b64(js(header)) + "." + b64(js(claims()))
    return si + "." + b64(hmac.new(secret, si.encode("ascii"), hashlib.sha256).digest())
tokens["confusion_hs256_rsa_pem"] = hs256_with_secret(rsa_pub_pem, {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
tokens["confusion_hs256_rsa_pem_no_kid"] = hs256_with_secret(rsa_pub_pem, {"alg": "HS256", "typ": "JWT"})
tokens["hs256_wrong_secret"] = mint("HS256", key=secrets.token_bytes(64))

# kid tricks.
tokens["kid_unknown"] = mint("RS256", kid="rsa-2")
tokens["kid_of_es256_key"] = mint("RS256", kid="ec-256")
tokens["kid_path_traversal"] = mint("RS256", kid="../../../../etc/passwd")
tokens["kid_empty"] = mint("RS256", kid="")
tokens["kid_not_string"] = mint("RS256", kid=123)
tokens["kid_pinned_ps256"] = mint("PS256", kid="rsa-pinned", key=rsa_pinned)
tokens["es256_no_kid"] = mint("ES256", kid=None)

# Signature attacks.
other = mint("RS256", payload=claims(sub="admin"))
h, p, _ = tokens["valid_rs256"].split(".")
tokens["spliced_signature"] = h + "." + p + "." + other.split(".")[2]
tokens["tampered_payload"] = h + "." + b64(js(claims(sub="admin"))) + "." + good_sig
tokens["attacker_key_same_kid"] = mint("RS256", kid="rsa-1", key=rsa_attacker)
tokens["es256_sig_truncated"] = ".".join(tokens["valid_es256"].split(".")[:2]) + "." + b64(b"\x01" * 63)

# Header parameters that must be refused.
tokens["crit_b64"] = mint("RS256", extra_header={"crit": ["b64"], "b64": False})
tokens["crit_empty"] = mint("RS256", extra_header={"crit": []})
attacker_jwk = json.loads(SIGNERS["ES256"].to_jwk(ec_attacker.public_key()))
tokens["embedded_jwk"] = mint("ES256", extra_header={"jwk": attacker_jwk}, key=ec_attacker)
tokens["embedded_jku"] = mint("RS256", extra_header={"jku": "https://attacker.test/jwks.json"})
tokens["embedded_x5u"] = mint("RS256", extra_header={"x5u": "https://attacker.test/cert.pem"})
tokens["embedded_x5c"] = mint("RS256", extra_header={"x5c": ["MIIBfake"]})
tokens["typ_jose"] = mint("RS256", extra_header={"typ": "JOSE"})
tokens["header_duplicate_alg"] = sign_raw(
    "RS256", b'{"alg":"HS256","kid":"rsa-1","alg":"RS256"}', js(claims())
)

# Compact serialization.
vh, vp, vs = tokens["valid_rs256"].split(".")
tokens["padding_signature"] = vh + "." + vp + "." + vs + "=="
# a header whose base64 needs padding, with the padding present
padded_header = base64.urlsafe_b64encode(js({"alg": "RS256", "typ": "JWT", "kid": "rsa-1", "x": 1})).decode()
tokens["padding_header"] = padded_header + "." + vp + "." + vs
tokens["two_segments"] = vh + "." + vp
tokens["four_segments"] = vh + "." + vp + "." + vs + "." + vs
tokens["empty_signature"] = vh + "." + vp + "."
tokens["empty_payload"] = vh + ".." + vs
tokens["standard_base64_chars"] = vh + "." + vp + "." + base64.b64encode(base64.urlsafe_b64decode(vs + "==")).decode().rstrip("=") + "+/"
tokens["whitespace_in_token"] = vh + "." + vp + " ." + vs
tokens["oversize"] = mint("ES256", payload=claims(blob="x" * 9000))
tokens["header_not_json"] = sign_raw("RS256", b"not json", js(claims()))
tokens["header_json_array"] = sign_raw("RS256", b'["RS256"]', js(claims()))
tokens["payload_not_json"] = sign_raw("RS256", js({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}), b"not json")
tokens["payload_json_array"] = sign_raw("RS256", js({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}), b"[1,2]")

# Claims.
tokens["expired"] = mint("ES256", payload=claims(exp=NOW - 3600))
tokens["expired_within_skew"] = mint("ES256", payload=claims(exp=NOW - 30))
tokens["expired_at_skew_edge"] = mint("ES256", payload=claims(exp=NOW - 60))
tokens["expired_just_past_skew"] = mint("ES256", payload=claims(exp=NOW - 61))
tokens["nbf_future"] = mint("ES256", payload=claims(nbf=NOW + 3600))
tokens["nbf_within_skew"] = mint("ES256", payload=claims(nbf=NOW + 30))
tokens["nbf_past_2106"] = mint("ES256", payload=claims(nbf=2**32 + 100))
tokens["iat_future"] = mint("ES256", payload=claims(iat=NOW + 3600))
tokens["wrong_iss"] = mint("ES256", payload=claims(iss="https://evil.test"))
tokens["iss_case"] = mint("ES256", payload=claims(iss="https://ISSUER.test"))
tokens["missing_iss"] = mint("ES256", payload=claims(iss=None))
tokens["wrong_aud"] = mint("ES256", payload=claims(aud="other"))
tokens["aud_array_with_ours"] = mint("ES256", payload=claims(aud=["other", AUDIENCE]))
tokens["aud_array_without_ours"] = mint("ES256", payload=claims(aud=["other", "more"]))
tokens["missing_aud"] = mint("ES256", payload=claims(aud=None))
tokens["missing_exp"] = mint("ES256", payload=claims(exp=None))
tokens["long_lifetime"] = mint("ES256", payload=claims(iat=NOW - 10, exp=NOW + 2 * 86400))
tokens["short_lifetime"] = mint("ES256", payload=claims(iat=NOW - 10, exp=NOW + 3600))
tokens["short_lifetime_no_iat"] = mint("ES256", payload=claims(iat=None, exp=NOW + 3600))
tokens["missing_sub"] = mint("ES256", payload=claims(sub=None))
tokens["exp_string"] = mint("ES256", payload=claims(exp=str(EXP)))
tokens["exp_float"] = mint("ES256", payload=claims(exp=EXP + 0.5))

doc = {
    "_comment": "Generated by tools/jwt-fixtures/mint_jws.py (PyJWT + cryptography); do not edit by hand. "
    "Rerun: .venv/bin/pip install -r tools/jwt-fixtures/requirements.txt && "
    ".venv/bin/python tools/jwt-fixtures/mint_jws.py",
    "issuer": ISSUER,
    "audience": AUDIENCE,
    "iat": IAT,
    "exp": EXP,
    "now": NOW,
    "jwks": jwks,
    "private_keys": {
        "rsa-1": pem_private(rsa_key),
        "rsa-pinned": pem_private(rsa_pinned),
        "ec-256": pem_private(ec256),
        "ec-384": pem_private(ec384),
        "ed-1": pem_private(ed),
    },
    "hmac_secrets": {"hmac-1": b64(hmac_secret)},
    "attacker": {"rsa_public_pem": pem_public(rsa_attacker), "ec_jwk": attacker_jwk},
    "tokens": tokens,
}

with open(OUT, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=1, sort_keys=False)
    f.write("\n")
print(f"wrote {os.path.normpath(OUT)}: {len(tokens)} tokens")
