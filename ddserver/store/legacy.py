"""Reading a ddserver 0.2 database and importing it: users, suffixes as zones, hosts with their addresses.

Password hashes come over as they are (SHA-512-crypt): user passwords are re-hashed with argon2id at the next
login, host passwords with the server-side scheme at the next successful update.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ddserver.db import Database, Transaction
from ddserver.errors import ValidationError
from ddserver.store import changes
from ddserver.store.common import now
from ddserver.store.zones import initial_serial


@dataclass
class ImportReport:
    zones: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LegacyData:
    suffixes: list[dict]
    users: list[dict]
    hosts: list[dict]


def read(source: Database) -> LegacyData:
    """Read a ddserver 0.2 (or 0.1) database.

    :raises ValidationError: if it does not look like one.
    """

    def run(tx: Transaction) -> LegacyData:
        try:
            suffixes = tx.all("SELECT id, name FROM suffixes ORDER BY id")
            users = tx.all("SELECT * FROM users ORDER BY id")
            hosts = tx.all("SELECT * FROM hosts ORDER BY id")
        except Exception as exc:  # noqa: BLE001 - any failure here means "not a ddserver 0.2 database"
            raise ValidationError(f"{source.url.describe()} is not a ddserver 0.2 database ({exc})")
        return LegacyData(suffixes, users, hosts)

    return source.read(run)


def import_all(
    target: Database,
    data: LegacyData,
    *,
    names: dict[str, str],
    nameservers: list[str],
    hostmaster: str,
) -> ImportReport:
    """Import everything in one transaction: all of it lands, or none of it.

    :param names: the validated form of every user, zone and host name in ``data`` (invalid ones are absent
        and skipped with a note in the report).
    """
    report = ImportReport()

    def run(tx: Transaction) -> ImportReport:
        zone_ids: dict[int, tuple[int, str]] = {}
        for suffix in data.suffixes:
            name = names.get(f"zone:{suffix['name']}")
            if name is None:
                report.skipped.append(f"zone {suffix['name']}: not a valid zone name")
                continue
            existing = tx.one("SELECT id FROM zones WHERE name = ?", (name,))
            if existing:
                zone_ids[suffix["id"]] = (existing["id"], name)
                report.skipped.append(f"zone {name}: exists already, hosts are added to it")
                continue
            zone_id = tx.insert(
                "INSERT INTO zones (name, nameservers, hostmaster, serial, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, " ".join(nameservers), hostmaster, initial_serial(), now()),
            )
            changes.record(tx, zone_id, name, name)
            zone_ids[suffix["id"]] = (zone_id, name)
            report.zones.append(name)
        user_ids: dict[int, int] = {}
        for user in data.users:
            name = names.get(f"user:{user['username']}")
            email = names.get(f"email:{user['email']}")
            if name is None or email is None:
                report.skipped.append(f"user {user['username']}: invalid name or e-mail address")
                continue
            if tx.scalar("SELECT COUNT(*) FROM users WHERE username = ? OR email = ?", (name, email)):
                report.skipped.append(f"user {name}: the name or e-mail address is taken")
                continue
            active = bool(user.get("active"))
            user_ids[user["id"]] = tx.insert(
                "INSERT INTO users (username, email, password_hash, is_admin, is_active, is_approved, max_hosts, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    email,
                    user.get("password"),
                    int(bool(user.get("admin"))),
                    int(active),
                    int(active),
                    user.get("maxhosts"),
                    now(),
                ),
            )
            report.users.append(name)
        for host in data.hosts:
            if host["suffix_id"] not in zone_ids or host["user_id"] not in user_ids:
                report.skipped.append(f"host {host['hostname']}: its zone or owner was not imported")
                continue
            zone_id, zone = zone_ids[host["suffix_id"]]
            label = names.get(f"label:{host['hostname']}")
            fqdn = f"{label}.{zone}" if label else None
            if fqdn is None or len(fqdn) > 253:
                report.skipped.append(f"host {host['hostname']}.{zone}: not a valid name")
                continue
            if tx.scalar("SELECT COUNT(*) FROM hosts WHERE name = ?", (fqdn,)):
                report.skipped.append(f"host {fqdn}: exists already")
                continue
            address = host.get("address")
            try:
                ipv4 = str(ipaddress.IPv4Address(address)) if address else None
            except ValueError:
                ipv4 = None
            if not host.get("password"):
                report.skipped.append(f"host {fqdn}: it has no password")
                continue
            tx.insert(
                "INSERT INTO hosts (name, zone_id, user_id, ipv4, wildcard, secret_hash, description, created_at, "
                "address_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fqdn,
                    zone_id,
                    user_ids[host["user_id"]],
                    ipv4,
                    int(bool(host.get("wildcard"))),
                    host["password"],
                    host.get("description") or "",
                    now(),
                    now() if ipv4 else None,
                ),
            )
            changes.record(tx, zone_id, zone, fqdn)
            report.hosts.append(fqdn)
        return report

    return target.run(run)
