"""What ``ddserver zone check`` and ``ddserver zone sync`` do for a zone served by an RFC 2136 primary."""

from __future__ import annotations

from ddserver.config import Config
from ddserver.db import Database
from ddserver.dns import rfc2136
from ddserver.dns.rfc2136 import Rfc2136Error, Target
from ddserver.errors import ValidationError
from ddserver.rfc2136 import client
from ddserver.rfc2136.worker import Worker
from ddserver.store import zones
from ddserver.store.zones import Zone


def target_of(zone: Zone) -> Target:
    """The zone's RFC 2136 target.

    :raises ValidationError: when the zone has no RFC 2136 server.
    :raises ConfigurationError: when its settings are not usable.
    """
    if not zone.rfc2136_server:
        raise ValidationError(f"zone {zone.name} has no RFC 2136 server (set one with 'ddserver zone edit')")
    return Target.from_settings(
        zone.name, zone.rfc2136_server, zone.rfc2136_transport, zone.tsig_name, zone.tsig_algorithm, zone.tsig_secret
    )


def check(db: Database, config: Config, zone: Zone) -> list[str]:
    """The server answers for the zone with authority, its SOA is the zone's, a signed no-op update passes.

    :raises Rfc2136Error: the first check that fails (also recorded as the zone's error).
    """
    target = target_of(zone)
    try:
        return client.check(target, zone.nameservers, config.rfc2136.timeout)
    except Rfc2136Error as exc:
        zones.set_rfc2136_state(db, zone.id, error=exc.message)
        raise


def sync(db: Database, config: Config, zone: Zone) -> list[str]:
    """Compare the server's zone (AXFR) with the database and fix every difference; safe while workers
    run (each update carries the SOA it was built against).

    :returns: the names fixed.
    :raises Rfc2136Error: when the server cannot be reached, refuses the transfer or the update.
    """
    target = target_of(zone)
    worker = Worker(db, config, holder="ddserver zone sync")
    try:
        rrsets = client.transfer(target, config.rfc2136.timeout)
        protected = rfc2136.nameserver_names(rrsets, target.origin)
        server = rfc2136.server_state(target, rrsets, protected)
        names = worker.differences(zone, server, protected)
        if names:
            worker.push(zone, target, names)
    except Rfc2136Error as exc:
        zones.set_rfc2136_state(db, zone.id, error=exc.message)
        raise
    zones.set_rfc2136_state(db, zone.id, ok=True)
    return names
