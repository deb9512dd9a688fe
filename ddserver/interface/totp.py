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
    counter = step(at) + step_offset
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def step(at: float | None = None) -> int:
    """The time step (counter) of the time ``at`` (now by default)."""
    return int((time.time() if at is None else at) // STEP)


def matching_step(secret: str, presented: str, at: float | None = None, window: int = 1) -> int | None:
    """The time step whose code was presented: this step or ``window`` steps either side (clock drift).

    :returns: the step, or None when the code matches none. The caller refuses a step already spent.
    """
    presented = presented.replace(" ", "").strip()
    if not secret or len(presented) != DIGITS or not (presented.isascii() and presented.isdigit()):
        return None
    found = None
    # Every candidate is compared (no early exit), so the time taken does not tell which step matched.
    for offset in range(-window, window + 1):
        if hmac.compare_digest(code(secret, at, offset), presented):
            found = step(at) + offset
    return found


def verify(secret: str, presented: str, at: float | None = None, window: int = 1) -> bool:
    """Accept the code of this step or of ``window`` steps either side (no replay check: see ``matching_step``)."""
    return matching_step(secret, presented, at, window) is not None


def uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI that authenticator apps read (typed in, or from a QR code)."""
    label = urllib.parse.quote(f"{issuer}:{account}")
    query = urllib.parse.urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS})
    return f"otpauth://totp/{label}?{query}"
