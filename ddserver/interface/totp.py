"""TOTP second factor (RFC 6238, HMAC-SHA1, 30 s steps, 6 digits): pure functions, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
import urllib.parse

STEP = 30
DIGITS = 6


def new_secret() -> str:
    """A fresh base32 secret of 160 bits, as authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def code(secret: str, at: float | None = None, step_offset: int = 0) -> str:
    """The code for the time ``at`` (now by default)."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // STEP) + step_offset
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def verify(secret: str, presented: str, at: float | None = None, window: int = 1) -> bool:
    """Accept the code of this step or of ``window`` steps either side (clock drift)."""
    presented = presented.replace(" ", "").strip()
    if not secret or len(presented) != DIGITS or not presented.isdigit():
        return False
    return any(hmac.compare_digest(code(secret, at, offset), presented) for offset in range(-window, window + 1))


def uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI that authenticator apps read (typed in, or from a QR code)."""
    label = urllib.parse.quote(f"{issuer}:{account}")
    query = urllib.parse.urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS})
    return f"otpauth://totp/{label}?{query}"
