#!/usr/bin/env python3
"""Mint the nested-JWE fixtures for filter/src/jwt/jwe.rs.

Tokens are produced by jwcrypto (and, for headers jwcrypto refuses to emit, by `cryptography`'s
AES-GCM directly): an implementation independent of the Rust side, so the unit tests check
interoperability rather than the Rust code agreeing with itself.

Usage (from the repository root):
    .venv/bin/pip install -r tools/jwt-fixtures/requirements-jwe.txt
    .venv/bin/python tools/jwt-fixtures/mint_jwe.py

Writes filter/src/jwt/testdata/jwe.json:
    decryption_keys  the private JWKS the filter decrypts with (config `decryption_keys`)
    signing_jwks     the public JWKS of the inner JWS (ES256), for end-to-end tests
    extra_keys       keys that are NOT configured (wrong-key cases), for reference
    inner_jws        the signed token every valid JWE carries
    tokens           name -> {"token", "expect", optional "max_bytes"}; expect is "ok" or the
                     snake_case TokenProblem name.
"""

import base64
import json
import os
import pathlib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwcrypto import jwe, jwk, jws
from jwcrypto.common import json_encode

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "filter" / "src" / "jwt" / "testdata" / "jwe.json"

IAT = 1700000000
EXP = 4102444800  # year 2100: fixtures never expire


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def oct_key(kid: str, alg: str, size: int) -> jwk.JWK:
    return jwk.JWK(kty="oct", kid=kid, alg=alg, use="enc", k=b64(os.urandom(size)))


def rsa_key(kid: str, alg: str) -> jwk.JWK:
    key = jwk.JWK.generate(kty="RSA", size=2048, kid=kid)
    data = json.loads(key.export_private())
    data.update({"alg": alg, "use": "enc"})
    return jwk.JWK(**data)


# --- keys -------------------------------------------------------------------------------
DIR256 = oct_key("dir-256", "dir", 32)
DIR128 = oct_key("dir-128", "dir", 16)
KW256 = oct_key("kw-256", "A256KW", 32)
KW128 = oct_key("kw-128", "A128KW", 16)
OAEP = rsa_key("rsa-oaep", "RSA-OAEP")
OAEP256 = rsa_key("rsa-oaep-256", "RSA-OAEP-256")
CONFIGURED = [DIR256, DIR128, KW256, KW128, OAEP, OAEP256]

# Not configured: same kids as configured keys, different material (wrong-key cases).
OTHER_DIR256 = oct_key("dir-256", "dir", 32)
OTHER_OAEP = rsa_key("rsa-oaep", "RSA-OAEP")
KW192 = oct_key("kw-192", "A192KW", 24)

SIGNER = jwk.JWK.generate(kty="EC", crv="P-256", kid="sig-es256")

# --- inner JWS --------------------------------------------------------------------------
CLAIMS = {
    "iss": "https://issuer.test",
    "aud": "api",
    "sub": "user-1",
    "iat": IAT,
    "exp": EXP,
    "scope": "read write",
}
signed = jws.JWS(json_encode(CLAIMS).encode())
signed.add_signature(SIGNER, None, json_encode({"alg": "ES256", "kid": "sig-es256", "typ": "JWT"}))
INNER = signed.serialize(compact=True)


def mint(key: jwk.JWK, alg: str, enc: str, plaintext: str = INNER, **extra) -> str:
    """jwcrypto compact JWE with the given protected header members."""
    header = {"alg": alg, "enc": enc, "cty": "JWT"}
    if key.get("kid") is not None:
        header["kid"] = key.get("kid")
    header.update(extra)
    header = {k: v for k, v in header.items() if v is not None}
    token = jwe.JWE(plaintext.encode(), protected=json_encode(header))
    token.allowed_algs = jwe.default_allowed_algs
    token.add_recipient(key)
    return token.serialize(compact=True)


def manual_dir(raw_header: str, cek: bytes, plaintext: str = INNER, iv: bytes = None) -> str:
    """dir + AES-GCM by hand, for protected headers jwcrypto will not emit (crit, duplicates,
    non-JSON). AAD is the ASCII of the encoded protected header, as RFC 7516 section 5.1."""
    protected = b64(raw_header.encode())
    iv = iv if iv is not None else os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext.encode(), protected.encode("ascii"))
    return ".".join([protected, "", b64(iv), b64(sealed[:-16]), b64(sealed[-16:])])


def flip(token: str, segment: int, byte: int = 0) -> str:
    """Flip one bit of one byte of a decoded segment and re-encode it strictly."""
    parts = token.split(".")
    raw = bytearray(unb64(parts[segment]))
    raw[byte] ^= 0x01
    parts[segment] = b64(bytes(raw))
    return ".".join(parts)


def replace(token: str, segment: int, value: str) -> str:
    parts = token.split(".")
    parts[segment] = value
    return ".".join(parts)


K256 = unb64(DIR256.get("k"))
K128 = unb64(DIR128.get("k"))

tokens = {}


def case(name: str, token: str, expect: str, max_bytes: int = None):
    entry = {"token": token, "expect": expect}
    if max_bytes is not None:
        entry["max_bytes"] = max_bytes
    tokens[name] = entry


# --- valid ------------------------------------------------------------------------------
valid_dir256 = mint(DIR256, "dir", "A256GCM")
case("dir_a256gcm", valid_dir256, "ok")
case("dir_a128gcm", mint(DIR128, "dir", "A128GCM"), "ok")
valid_kw256 = mint(KW256, "A256KW", "A256GCM")
case("a256kw_a256gcm", valid_kw256, "ok")
case("a256kw_a128gcm", mint(KW256, "A256KW", "A128GCM"), "ok")
case("a128kw_a256gcm", mint(KW128, "A128KW", "A256GCM"), "ok")
case("a128kw_a128gcm", mint(KW128, "A128KW", "A128GCM"), "ok")
valid_oaep = mint(OAEP, "RSA-OAEP", "A256GCM")
case("rsa_oaep_a256gcm", valid_oaep, "ok")
case("rsa_oaep_a128gcm", mint(OAEP, "RSA-OAEP", "A128GCM"), "ok")
valid_oaep256 = mint(OAEP256, "RSA-OAEP-256", "A256GCM")
case("rsa_oaep_256_a256gcm", valid_oaep256, "ok")
case("cty_lowercase_jwt", mint(DIR256, "dir", "A256GCM", cty="jwt"), "ok")
case("typ_jose_ignored", mint(DIR256, "dir", "A256GCM", typ="JOSE"), "ok")
case("exactly_max_bytes", valid_dir256, "ok", max_bytes=len(valid_dir256))

# --- wrong key / tampering (all DecryptFailed) ------------------------------------------
case("wrong_dir_key_same_kid", mint(OTHER_DIR256, "dir", "A256GCM"), "decrypt_failed")
case("wrong_rsa_key_same_kid", mint(OTHER_OAEP, "RSA-OAEP", "A256GCM"), "decrypt_failed")
case("unknown_kid", mint(DIR256, "dir", "A256GCM", kid="nobody"), "decrypt_failed")
# The key under kid-256 is a dir key: an A256KW header naming it must not be tried as a KEK.
case("alg_differs_from_key_alg", mint(KW256, "A256KW", "A256GCM", kid="dir-256"), "decrypt_failed")
# RSA-OAEP-256 header naming the RSA-OAEP key: the key's alg pins the padding.
case("oaep_256_header_on_oaep_key", mint(OAEP, "RSA-OAEP-256", "A256GCM"), "decrypt_failed")
# 16-byte dir key named by an A256GCM header: key size pins enc.
case("dir_key_size_differs_from_enc",
     manual_dir(json.dumps({"alg": "dir", "enc": "A256GCM", "kid": "dir-128", "cty": "JWT"}), os.urandom(32)),
     "decrypt_failed")
case("tampered_ciphertext", flip(valid_dir256, 3), "decrypt_failed")
case("tampered_tag", flip(valid_dir256, 4, 15), "decrypt_failed")
case("tampered_iv", flip(valid_dir256, 2, 5), "decrypt_failed")
case("tampered_ciphertext_kw", flip(valid_kw256, 3, 7), "decrypt_failed")
case("tampered_encrypted_key_kw", flip(valid_kw256, 1, 3), "decrypt_failed")
case("tampered_encrypted_key_oaep", flip(valid_oaep, 1, 40), "decrypt_failed")
case("tampered_encrypted_key_oaep_256", flip(valid_oaep256, 1, 200), "decrypt_failed")
# The protected header is the AAD: re-encoding it (same members, different bytes) must fail.
hdr = json.loads(unb64(valid_dir256.split(".")[0]))
hdr["x"] = 1
case("tampered_header_aad", replace(valid_dir256, 0, b64(json.dumps(hdr).encode())), "decrypt_failed")
# Encrypted key of an RSA token spliced into a KW token (wrong length for the KEK).
case("spliced_encrypted_key", replace(valid_kw256, 1, valid_oaep.split(".")[1]), "decrypt_failed")
# Segments of one token with the tag of another.
case("spliced_tag", replace(valid_dir256, 4, mint(DIR256, "dir", "A256GCM").split(".")[4]),
     "decrypt_failed")

# --- algorithms ---------------------------------------------------------------------------
case("a192kw_unsupported", mint(KW192, "A192KW", "A256GCM"), "algorithm_not_allowed")
case("enc_cbc_hs_unsupported", mint(DIR256, "dir", "A128CBC-HS256"), "algorithm_not_allowed")
case("enc_a192gcm_unsupported", mint(oct_key("dir-192", "dir", 24), "dir", "A192GCM"),
     "algorithm_not_allowed")
case("alg_none", manual_dir(json.dumps({"alg": "none", "enc": "A256GCM", "kid": "dir-256", "cty": "JWT"}), K256),
     "algorithm_not_allowed")
case("alg_case_variant", manual_dir(json.dumps({"alg": "DIR", "enc": "A256GCM", "kid": "dir-256", "cty": "JWT"}), K256),
     "algorithm_not_allowed")
case("enc_case_variant", manual_dir(json.dumps({"alg": "dir", "enc": "a256gcm", "kid": "dir-256", "cty": "JWT"}), K256),
     "algorithm_not_allowed")
case("zip_def", mint(DIR256, "dir", "A256GCM", zip="DEF"), "algorithm_not_allowed")

# --- header policy --------------------------------------------------------------------------
case("cty_missing", mint(DIR256, "dir", "A256GCM", cty=None), "malformed")
case("cty_json", mint(DIR256, "dir", "A256GCM", cty="json"), "malformed")
case("crit", manual_dir(json.dumps({"alg": "dir", "enc": "A256GCM", "kid": "dir-256", "cty": "JWT",
                                    "crit": ["exp"], "exp": 1}), K256), "unknown_critical")
for member, value in [("jku", "https://evil.test/jwks"), ("x5u", "https://evil.test/cert"),
                      ("x5c", ["MIIB"]), ("jwk", json.loads(SIGNER.export_public()))]:
    header = {"alg": "dir", "enc": "A256GCM", "kid": "dir-256", "cty": "JWT", member: value}
    case(f"embedded_{member}", manual_dir(json.dumps(header), K256), "embedded_key")
case("duplicate_alg_member",
     manual_dir('{"alg":"A256KW","alg":"dir","enc":"A256GCM","kid":"dir-256","cty":"JWT"}', K256), "malformed")
case("header_not_json", manual_dir('{"alg":"dir",', K256), "malformed")
case("header_json_array", manual_dir('["dir","A256GCM"]', K256), "malformed")
case("alg_not_string", manual_dir(json.dumps({"alg": 1, "enc": "A256GCM", "kid": "dir-256", "cty": "JWT"}), K256),
     "malformed")
case("kid_not_string", manual_dir(json.dumps({"alg": "dir", "enc": "A256GCM", "kid": 7, "cty": "JWT"}), K256),
     "malformed")
case("enc_missing", manual_dir(json.dumps({"alg": "dir", "kid": "dir-256", "cty": "JWT"}), K256), "malformed")
case("kid_missing_many_keys", mint(DIR256, "dir", "A256GCM", kid=None), "kid_missing")

# --- structure ------------------------------------------------------------------------------
parts = valid_dir256.split(".")
case("four_segments", ".".join(parts[:4]), "malformed")
case("six_segments", valid_dir256 + ".AAAA", "malformed")
case("three_segments_jws", INNER, "malformed")
case("padding_in_iv", replace(valid_dir256, 2, parts[2] + "="), "malformed")
case("padding_in_ciphertext", replace(valid_dir256, 3, parts[3] + "=="), "malformed")
case("standard_base64_chars", replace(valid_dir256, 3, parts[3][:-2] + "+/"), "malformed")
case("whitespace", valid_dir256[:30] + " " + valid_dir256[30:], "malformed")
case("empty_header", replace(valid_dir256, 0, ""), "malformed")
case("empty_iv", replace(valid_dir256, 2, ""), "malformed")
case("iv_wrong_length", replace(valid_dir256, 2, b64(os.urandom(16))), "malformed")
case("empty_tag", replace(valid_dir256, 4, ""), "malformed")
case("tag_truncated", replace(valid_dir256, 4, b64(unb64(parts[4])[:12])), "malformed")
case("dir_with_encrypted_key", replace(valid_dir256, 1, b64(os.urandom(40))), "malformed")
case("kw_without_encrypted_key", replace(valid_kw256, 1, ""), "malformed")
# A base64url segment whose length is 1 mod 4 cannot encode whole bytes.
case("segment_len_1_mod_4", replace(valid_dir256, 4, parts[4] + "A"), "malformed")
case("oversize", valid_dir256, "too_large", max_bytes=len(valid_dir256) - 1)
case("oversize_garbage", "x" * 9000, "too_large", max_bytes=8192)

# --- plaintext ----------------------------------------------------------------------------
case("plaintext_claims_json", mint(DIR256, "dir", "A256GCM", plaintext=json_encode(CLAIMS)), "malformed")
case("plaintext_two_segments", mint(DIR256, "dir", "A256GCM", plaintext=".".join(INNER.split(".")[:2])),
     "malformed")
case("plaintext_nested_jwe", mint(DIR256, "dir", "A256GCM", plaintext=valid_dir256), "malformed")
case("plaintext_empty_signature", mint(DIR256, "dir", "A256GCM", plaintext=".".join(INNER.split(".")[:2]) + "."),
     "malformed")
case("plaintext_padded_jws", mint(DIR256, "dir", "A256GCM", plaintext=INNER + "="), "malformed")


def private(key: jwk.JWK) -> dict:
    return json.loads(key.export(private_key=True))


document = {
    "_comment": "Generated by tools/jwt-fixtures/mint_jwe.py (jwcrypto); do not edit by hand.",
    "iat": IAT,
    "exp": EXP,
    "decryption_keys": {"keys": [private(k) for k in CONFIGURED]},
    "signing_jwks": {"keys": [json.loads(SIGNER.export_public())]},
    "extra_keys": {"keys": [private(k) for k in (OTHER_DIR256, OTHER_OAEP, KW192)]},
    "inner_jws": INNER,
    "claims": CLAIMS,
    "tokens": tokens,
}
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
print(f"wrote {OUT} with {len(tokens)} tokens")
