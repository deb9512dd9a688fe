"""Signing zones with DNSSEC, for the ``ddserver`` command and the admin pages: keys made here (dns/dnssec.py),
sealed with the data key (sealing.py) and stored (store/dnssec.py); PowerDNS signs with them.

Private keys are never printed, logged or returned by anything here but sealed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ddserver import sealing
from ddserver.config import Config
from ddserver.db import Database
from ddserver.dns import dnssec
from ddserver.errors import ConfigError, Conflict, ValidationError
from ddserver.store import dnssec as store
from ddserver.store.dnssec import ZoneKey


class PipeBackend(ConfigError):
    """The pipe backend cannot serve DNSSEC ([recursor] backend = pipe): serve the zones through the remote
    backend (remote-dnssec=yes) before signing them."""


def algorithm_of(name: str) -> int:
    """:raises ValidationError: for a name other than ecdsa256 or ed25519."""
    try:
        return int(dnssec.ALGORITHM_NAMES[name.lower()])
    except KeyError:
        raise ValidationError(f"algorithm {name!r}: expected one of {', '.join(dnssec.ALGORITHM_NAMES)}") from None


def _can_sign(config: Config) -> sealing.Sealer:
    if config.recursor.backend == "pipe":
        raise PipeBackend(
            "[recursor] backend = pipe: the pipe backend cannot serve DNSSEC (answers would go out unsigned); "
            "serve the zones through the remote backend with remote-dnssec=yes first (docs/dnssec.md)"
        )
    return sealing.load(config, required=True)


def key_context(zone: str) -> str:
    """The context a zone's private keys are sealed with (the recursor opens them with it)."""
    return "dnssec:" + zone


def to_add(
    sealer: sealing.Sealer, zone: str, key: dnssec.NewKey, active: bool = True, published: bool = True
) -> store.KeyToAdd:
    """``key`` ready to store, its private key sealed with the data key.

    :raises SealingError: when no data key is configured.
    """
    sealed = sealer.seal(key.private_text, key_context(zone))
    return store.KeyToAdd(key.flags, key.algorithm, key.tag, key.public_key, sealed, active=active, published=published)


def enable(db: Database, config: Config, zone: str, algorithm: int = dnssec.Algorithm.ECDSAP256SHA256) -> list[ZoneKey]:
    """Sign ``zone``: a KSK and a ZSK (kept if the zone has keys already), NSEC3 narrow with the parameters
    RFC 9276 recommends.

    :raises PipeBackend: when the configuration says the recursors speak the pipe protocol.
    :raises ConfigError: when no data key is configured to seal the private keys.
    """
    sealer = _can_sign(config)
    keys = [
        to_add(sealer, zone, dnssec.generate(dnssec.Flags.KSK, algorithm)),
        to_add(sealer, zone, dnssec.generate(dnssec.Flags.ZSK, algorithm)),
    ]
    return store.enable(db, zone, keys, dnssec.DEFAULT_NSEC3PARAM)


def disable(db: Database, zone: str, ds_removed: bool) -> int:
    """Stop signing ``zone`` and delete its keys, once the operator says the DS is gone from the parent.

    :raises Conflict: without that confirmation (a DS left at the parent makes the unsigned zone bogus).
    """
    on, _, keys = store.state(db, zone)
    if not on and not keys:
        return 0
    if not ds_removed:
        raise Conflict(
            f"zone {zone} is signed: remove its DS records at the parent first, wait for their TTL to pass, "
            "then confirm (--confirm-ds-removed) — an unsigned zone with a DS at the parent does not resolve "
            "for validating resolvers"
        )
    return store.disable(db, zone)


def add_key(
    db: Database, config: Config, zone: str, *, ksk: bool = False, active: bool = False, algorithm: int | None = None
) -> ZoneKey:
    """Add a key to a signed zone (published; ``active``: signing at once). A rollover's new ZSK is added
    inactive, activated after the DNSKEY TTL has passed (docs/dnssec.md)."""
    sealer = _can_sign(config)
    on, _, keys = store.state(db, zone)
    if not on:
        raise Conflict(f"zone {zone} is not signed: turn DNSSEC on first ('ddserver zone dnssec {zone} on')")
    if algorithm is None:
        algorithm = keys[0].algorithm if keys else int(dnssec.Algorithm.ECDSAP256SHA256)
    flags = dnssec.Flags.KSK if ksk else dnssec.Flags.ZSK
    return store.add_key(db, zone, to_add(sealer, zone, dnssec.generate(flags, algorithm), active))


@dataclass(frozen=True)
class DsRecord:
    key: ZoneKey
    text: str  # the DS record in zone-file form

    def __str__(self) -> str:
        return self.text


def ds_records(db: Database, zone: str) -> list[DsRecord]:
    """The DS records (SHA-256) of the zone's published KSKs, for the parent zone."""
    on, _, keys = store.state(db, zone)
    if not on:
        return []
    return [
        DsRecord(k, f"{zone}. IN DS {dnssec.ds_text(zone, k.flags, k.algorithm, k.public_key)}")
        for k in keys
        if k.flags == dnssec.Flags.KSK and k.published
    ]


def dnskey_record(zone: str, key: ZoneKey) -> str:
    """A key's DNSKEY record in zone-file form (for a trust anchor or to compare with what is served)."""
    return f"{zone}. IN DNSKEY {dnssec.dnskey_text(key.flags, key.algorithm, key.public_key)}"
