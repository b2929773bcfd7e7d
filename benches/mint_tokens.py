#!/usr/bin/env python3
"""Mints ES256 access tokens and the matching JWKS for the auth load benchmarks.

    python3 benches/mint_tokens.py OUT_DIR ISSUER AUDIENCE COUNT [KID]

Writes OUT_DIR/jwks.json (one P-256 key, kid KID, default "bench-1"), OUT_DIR/tokens.txt (COUNT distinct
valid tokens, one a line, distinct `sub` and `jti`, valid for a day) and OUT_DIR/forged.txt
(the first token with one signature bit flipped: the right kid, a bad signature).
Needs the `cryptography` package (pip install cryptography). Test keys only: a fresh key each run.
"""
import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    out, issuer, audience, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    kid = sys.argv[5] if len(sys.argv) > 5 else "bench-1"
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big")),
    }
    with open(f"{out}/jwks.json", "w") as f:
        json.dump({"keys": [jwk]}, f)
    header = b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": kid}).encode())
    now = int(time.time())
    tokens = []
    for i in range(count):
        claims = {
            "iss": issuer, "aud": audience, "sub": f"user-{i}", "jti": f"jti-{i}",
            "scope": "mcp:read", "iat": now - 10, "exp": now + 86400, "client_id": "bench",
        }
        signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        tokens.append(f"{signing_input}.{b64(sig)}")
    with open(f"{out}/tokens.txt", "w") as f:
        f.write("\n".join(tokens) + "\n")
    first = tokens[0]
    dot = first.rindex(".")
    sig = bytearray(base64.urlsafe_b64decode(first[dot + 1:] + "=="))
    sig[40] ^= 1
    with open(f"{out}/forged.txt", "w") as f:
        f.write(f"{first[:dot]}.{b64(bytes(sig))}\n")


if __name__ == "__main__":
    main()
