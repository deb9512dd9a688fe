"""DNSSEC for PowerDNS's live signing (pure): zone keys in PowerDNS's private key format, their DNSKEY and DS
records, and the domain metadata a signed zone needs.

PowerDNS signs a zone when its backend gives it active keys (``getDomainKeys``) and reads how to deny
existence from the zone's metadata (``getDomainMetadata``); ddserver keeps both in its database, so every
PowerDNS node signs with the same keys.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ddserver.dns import nsec3
from ddserver.errors import ValidationError


class Algorithm(enum.IntEnum):
    """The DNSKEY algorithms ddserver makes keys for."""

    ECDSAP256SHA256 = 13
    ED25519 = 15


#: Names on the command line and in the interface.
ALGORITHM_NAMES = {"ecdsa256": Algorithm.ECDSAP256SHA256, "ed25519": Algorithm.ED25519}


class Flags(enum.IntEnum):
    """DNSKEY flags: a key-signing key (SEP bit set) or a zone-signing key."""

    KSK = 257
    ZSK = 256


#: NSEC3 with SHA-1, no opt-out, no extra iterations, no salt (RFC 9276).
DEFAULT_NSEC3PARAM = "1 0 0 -"


@dataclass(frozen=True)
class NewKey:
    """A key just made: the private key text (PowerDNS's v1.2 format: seal it before storing) and the public
    parts."""

    flags: int
    algorithm: int
    private_text: str
    public_key: str  # base64, as in the DNSKEY record
    tag: int

    def __repr__(self) -> str:  # the private key never enters a log or a traceback's locals dump
        return f"NewKey(flags={self.flags}, algorithm={self.algorithm}, tag={self.tag})"


def generate(flags: int, algorithm: int) -> NewKey:
    """A new key pair for a zone.

    :raises ValidationError: for an algorithm ddserver does not make keys for.
    """
    if algorithm == Algorithm.ECDSAP256SHA256:
        private = ec.generate_private_key(ec.SECP256R1())
        secret = private.private_numbers().private_value.to_bytes(32, "big")
        text = private_text(algorithm, "ECDSAP256SHA256", secret)
    elif algorithm == Algorithm.ED25519:
        secret = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        text = private_text(algorithm, "ED25519", secret)
    else:
        raise ValidationError(f"DNSSEC algorithm {algorithm} is not supported (13 or 15)")
    return _with_public(flags, int(algorithm), text, secret)


def _with_public(flags: int, algorithm: int, text: str, secret: bytes) -> NewKey:
    """The key whose private part is ``secret`` (a P-256 scalar or an Ed25519 seed), with its public key."""
    if algorithm == Algorithm.ECDSAP256SHA256:
        if len(secret) != 32:
            raise ValidationError("an ECDSA P-256 private key has 32 bytes")
        try:
            private = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())
        except ValueError:
            raise ValidationError("not an ECDSA P-256 private key") from None
        numbers = private.public_key().public_numbers()
        public = numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    elif algorithm == Algorithm.ED25519:
        if len(secret) != 32:
            raise ValidationError("an Ed25519 private key has 32 bytes")
        edkey = ed25519.Ed25519PrivateKey.from_private_bytes(secret)
        public = edkey.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raise ValidationError(f"DNSSEC algorithm {algorithm} is not supported (13 or 15)")
    encoded = base64.b64encode(public).decode("ascii")
    return NewKey(flags, algorithm, text, encoded, key_tag(flags, algorithm, public))


def from_private_text(text: str, flags: int) -> NewKey:
    """A key made elsewhere (PowerDNS's ``addDomainKey``: ``pdnsutil add-zone-key``, its HTTP API), from its
    private key text (v1.2), with its public key and tag derived; the text is kept as given.

    :raises ValidationError: for flags other than 256 and 257, text that is not a v1.2 private key, or an
        algorithm other than 13 and 15 (the error never holds the key).
    """
    if flags not in (Flags.KSK, Flags.ZSK):
        raise ValidationError(f"DNSKEY flags {flags}: expected 256 (ZSK) or 257 (KSK)")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if fields.get("private-key-format") != "v1.2" or "privatekey" not in fields:
        raise ValidationError("not a private key in the v1.2 format")
    number = fields.get("algorithm", "").split(" ", 1)[0]
    if not number.isdigit():
        raise ValidationError("the private key names no algorithm")
    try:
        secret = base64.b64decode(fields["privatekey"], validate=True)
    except ValueError:
        raise ValidationError("the private key is not base64") from None
    return _with_public(flags, int(number), text, secret)


def private_text(algorithm: int, name: str, key: bytes) -> str:
    """A private key as ``pdnsutil export-zone-key`` prints it and PowerDNS reads it (BIND's v1.2 format)."""
    return (
        f"Private-key-format: v1.2\nAlgorithm: {algorithm} ({name})\n"
        f"PrivateKey: {base64.b64encode(key).decode('ascii')}\n"
    )


def dnskey_rdata(flags: int, algorithm: int, public: bytes) -> bytes:
    return struct.pack("!HBB", flags, 3, algorithm) + public


def key_tag(flags: int, algorithm: int, public: bytes) -> int:
    """The key tag of RFC 4034, appendix B."""
    data = dnskey_rdata(flags, algorithm, public)
    total = 0
    for i, byte in enumerate(data):
        total += byte << 8 if i % 2 == 0 else byte
    total += (total >> 16) & 0xFFFF
    return total & 0xFFFF


def wire_name(name: str) -> bytes:
    """A name in canonical wire form (lower case)."""
    out = b""
    for label in name.lower().rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def dnskey_text(flags: int, algorithm: int, public_key: str) -> str:
    """The DNSKEY record's data in zone-file form."""
    return f"{flags} 3 {algorithm} {public_key}"


def ds_text(zone: str, flags: int, algorithm: int, public_key: str) -> str:
    """The DS record's data (SHA-256 digest) for the parent zone."""
    public = base64.b64decode(public_key)
    rdata = dnskey_rdata(flags, algorithm, public)
    digest = hashlib.sha256(wire_name(zone) + rdata).hexdigest().upper()
    return f"{key_tag(flags, algorithm, public)} {algorithm} 2 {digest}"


#: Whether a signed zone has a full NSEC3 chain rather than narrow mode (``nsec3.chained``).
nsec3_chained = nsec3.chained


#: A zone key as the recursor holds it: (id, flags, active, published, sealed private key text).
KeyRow = tuple[int, int, bool, bool, str]


def metadata_for(
    dnssec: bool, nsec3param: str, keys: tuple[KeyRow, ...], *, chained: bool = False
) -> dict[str, list[str]]:
    """The DNSSEC domain metadata of a zone, as PowerDNS asks for it (``getAllDomainMetadata``) when it is
    signed; nothing for an unsigned zone. PRESIGNED is never set: PowerDNS signs.

    :param chained: NSEC3 with a full chain (the recursor gives PowerDNS the neighbours of each hash, and
        AXFR carries the chain: the zone can be transferred, and walked by hash); else NSEC3 in narrow mode
        (hashes computed per answer, so no ordering of names and no zone walking, but no transfers).
    """
    if not dnssec or not keys:
        return {}
    if chained:
        return {"NSEC3PARAM": [nsec3param]}
    return {"NSEC3PARAM": [nsec3param], "NSEC3NARROW": ["1"]}
