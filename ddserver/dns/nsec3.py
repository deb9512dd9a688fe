"""The NSEC3 chain of a signed zone served with a full chain (not narrow): the hashed names in order (pure).

PowerDNS asks the backend for the neighbours of a hash (``getBeforeAndAfterNamesAbsolute``) to prove that a
name does not exist; AXFR builds the same chain itself from the zone's records. The chain holds the hash
of every name of the zone: the apex, hosts, wildcard names, owners of extra records and the empty
non-terminals above them. Hashes are kept as 20-byte digests in one sorted ``bytearray`` (20 bytes a name,
about 28 MB with the names' references for a million), changed in place as names come and go.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable

from ddserver.errors import ValidationError

DIGEST = 20  # SHA-1


def chained(transfer_keys: bool, also_notify: bool) -> bool:
    """Whether a signed zone denies existence with a full NSEC3 chain rather than in narrow mode: when it has
    secondaries (transfer keys, or also-notify addresses), as PowerDNS transfers no narrow zone. Narrow
    otherwise: nothing to walk. docs/dnssec.md#nsec3-narrow-or-a-chain"""
    return transfer_keys or also_notify


def wire(name: str) -> bytes:
    """A name (lower case, no final dot) in canonical wire form."""
    out = b""
    for label in name.encode("ascii").split(b"."):
        if label:
            out += bytes((len(label),)) + label
    return out + b"\0"


def parse_param(text: str) -> tuple[bytes, int]:
    """The salt and extra iterations of an NSEC3PARAM text (``1 0 0 -``).

    :raises ValidationError: for anything but SHA-1 (algorithm 1).
    """
    fields = text.split()
    if len(fields) != 4 or fields[0] != "1":
        raise ValidationError(f"NSEC3PARAM '{text}' is not 'ALGORITHM FLAGS ITERATIONS SALT' with SHA-1")
    salt = b"" if fields[3] == "-" else bytes.fromhex(fields[3])
    return salt, int(fields[2])


def digest(name: str, salt: bytes = b"", iterations: int = 0) -> bytes:
    """The NSEC3 hash of a name (RFC 5155, section 5): SHA-1 of the wire name and salt, iterated."""
    value = hashlib.sha1(wire(name) + salt).digest()
    for _ in range(iterations):
        value = hashlib.sha1(value + salt).digest()
    return value


def to_label(raw: bytes) -> str:
    """A digest as PowerDNS writes it in an NSEC3 owner name: base32hex, lower case, no padding."""
    return base64.b32hexencode(raw).decode("ascii").rstrip("=").lower()


def from_label(text: str) -> bytes | None:
    """The digest in a hashed label (either case); None when it is not one."""
    if len(text) != 32:
        return None
    try:
        raw = base64.b32hexdecode(text.upper())
    except ValueError:
        return None
    return raw if len(raw) == DIGEST else None


class Chain:
    """The hashed names of one zone in hash order, with the name behind each hash.

    Changed by the index's writer (one thread) and read by the backend's threads; a lock keeps the two
    arrays in step. ``ents`` holds the names present only because names exist below them.
    """

    def __init__(self, apex: str, salt: bytes = b"", iterations: int = 0) -> None:
        self.apex = apex
        self.salt = salt
        self.iterations = iterations
        self._hashes = bytearray()
        self._names: list[str] = []
        #: Names below which real names exist, with how many (only names between the apex and the names).
        self._below: dict[str, int] = {}
        #: Empty non-terminals: in the chain with no records of their own.
        self.ents: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._names)

    def _digest(self, name: str) -> bytes:
        return digest(name, self.salt, self.iterations)

    def _position(self, key: bytes) -> int:
        """The number of hashes <= key (bisect right)."""
        hashes = self._hashes
        low, high = 0, len(self._names)
        while low < high:
            mid = (low + high) // 2
            start = mid * DIGEST
            if hashes[start : start + DIGEST] <= key:
                low = mid + 1
            else:
                high = mid
        return low

    def _index_of(self, key: bytes) -> int | None:
        pos = self._position(key) - 1
        if pos >= 0 and self._hashes[pos * DIGEST : (pos + 1) * DIGEST] == key:
            return pos
        return None

    def contains(self, name: str) -> bool:
        with self._lock:
            return self._index_of(self._digest(name)) is not None

    def _insert(self, name: str) -> None:
        key = self._digest(name)
        with self._lock:
            if self._index_of(key) is not None:
                return
            pos = self._position(key)
            self._hashes[pos * DIGEST : pos * DIGEST] = key
            self._names.insert(pos, name)

    def _remove(self, name: str) -> None:
        key = self._digest(name)
        with self._lock:
            pos = self._index_of(key)
            if pos is not None:
                del self._hashes[pos * DIGEST : (pos + 1) * DIGEST]
                del self._names[pos]

    def _ancestors(self, name: str) -> list[str]:
        """The names strictly between ``name`` and the apex."""
        out = []
        suffix = "." + self.apex
        while True:
            dot = name.find(".")
            if dot < 0:
                break
            name = name[dot + 1 :]
            if not name.endswith(suffix):
                break
            out.append(name)
        return out

    def is_real(self, name: str) -> bool:
        """In the chain with records of its own (not only as an empty non-terminal)."""
        return name not in self.ents and self.contains(name)

    def set_real(self, name: str, present: bool) -> bool:
        """Make ``name`` (in the zone, below the apex) present with records of its own, or not.

        :returns: whether the chain changed.
        """
        if self.is_real(name) == present:
            return False
        if present:
            if name in self.ents:
                self.ents.discard(name)
            else:
                self._insert(name)
            for above in self._ancestors(name):
                count = self._below.get(above, 0) + 1
                self._below[above] = count
                if count == 1 and not self.contains(above):
                    self.ents.add(above)
                    self._insert(above)
        else:
            if self._below.get(name, 0) > 0:
                self.ents.add(name)
            else:
                self._remove(name)
            for above in self._ancestors(name):
                count = self._below.get(above, 0) - 1
                if count > 0:
                    self._below[above] = count
                    continue
                self._below.pop(above, None)
                if above in self.ents:
                    self.ents.discard(above)
                    self._remove(above)
        return True

    def neighbours(self, key: bytes) -> tuple[bytes, str, bytes]:
        """What PowerDNS asks for a hash: the greatest hash <= ``key`` (wrapping to the last), the name
        behind it, and the least hash > ``key`` (wrapping to the first).

        :raises LookupError: when the chain is empty.
        """
        with self._lock:
            count = len(self._names)
            if count == 0:
                raise LookupError("empty chain")
            pos = self._position(key)
            before = (pos - 1) % count
            after = pos % count
            hashes = self._hashes
            return (
                bytes(hashes[before * DIGEST : (before + 1) * DIGEST]),
                self._names[before],
                bytes(hashes[after * DIGEST : (after + 1) * DIGEST]),
            )

    def names(self) -> list[str]:
        """Every name in hash order (tests, tools)."""
        with self._lock:
            return list(self._names)


def build(apex: str, names: Iterable[str], salt: bytes = b"", iterations: int = 0) -> Chain:
    """A chain of the apex, the given names (each below the apex, once) and their empty non-terminals, sorted
    once: a million names take a few seconds (docs/dnssec.md).

    The names are sorted in place by their hashes and hashed a second time to fill the chain: slower than
    keeping the sorted hashes, but the build's peak memory stays at about one hash per name.
    """
    chain = Chain(apex, salt, iterations)
    everything = [apex]
    everything.extend(names)
    below: dict[str, int] = {}
    ancestors = chain._ancestors
    for name in everything[1:]:
        for above in ancestors(name):
            below[above] = below.get(above, 0) + 1
    chain._below = below
    if below:
        present = set(everything)
        chain.ents = {name for name in below if name not in present}
        everything.extend(chain.ents)
    everything.sort(key=lambda name: digest(name, salt, iterations))
    hashes = bytearray(DIGEST * len(everything))
    start = 0
    for name in everything:
        hashes[start : start + DIGEST] = digest(name, salt, iterations)
        start += DIGEST
    chain._hashes = hashes
    chain._names = everything
    return chain
