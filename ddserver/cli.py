"""The ``ddserver`` admin command: init, migrate, zones, users, hosts and the quick start."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

from ddserver import __version__, prefixes, relay, sealing, secrets, validate
from ddserver.config import DEFAULT_PATH, Config, load_config
from ddserver.console import EXIT_ERROR, run, setup_logging
from ddserver.db import Database, DatabaseUrl
from ddserver.db import migrate as migrations
from ddserver.errors import ConfigError, Conflict, DDServerError, NotFound, ValidationError
from ddserver.store import history, hosts, ownzones, related, relays, retention, tokens, users, zones
from ddserver.store.common import KEEP
from ddserver.store.dnssec import ZoneKey
from ddserver.store.retention import Ages
from ddserver.validate import TSIG_ALGORITHMS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ddserver", description="Administer a ddserver dynamic DNS service.")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (else $DDSERVER_CONFIG, /etc/ddserver/ddserver.conf, built-in defaults)",
    )
    parser.add_argument("--version", action="version", version=f"ddserver {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("init", help="create the database schema and the secret key if missing")
    sub.add_parser("migrate", help="apply pending schema migrations (safe to run on every start)")

    zone = sub.add_parser("zone", help="manage zones").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    zone.required = True
    add = zone.add_parser("add", help="add a zone")
    add.add_argument("name", help="zone name, such as dyn.example.org")
    add.add_argument(
        "--ns",
        action="append",
        metavar="NAME",
        help="a nameserver of the zone (repeat for each; with --owner: [zones] nameservers)",
    )
    add.add_argument(
        "--hostmaster", metavar="EMAIL", help="hostmaster address, for the SOA (with --owner: [zones] hostmaster)"
    )
    add.add_argument(
        "--owner",
        metavar="USER",
        help="a user's own zone: served once its parent delegates it to [zones] nameservers (checked at once)",
    )
    add.add_argument("--ttl", type=int, metavar="SECONDS", help="TTL of host records (default: [dns] default_ttl)")
    add.add_argument("--private", action="store_true", help="only admins (and users granted it) may add hosts")
    add.add_argument("--description", default="", help="shown to users in the zone picker")
    _host_rule_arguments(add)
    _rfc2136_arguments(add)
    zone.add_parser("list", help="list zones with their serial, nameservers and hosts")
    zone.add_parser(
        "check-delegations",
        help="check every user's zone's delegation: serve, keep in its grace period, suspend (an hourly timer)",
    )
    approve = zone.add_parser("approve", help="approve a user's zone (when [zones] approval is on)")
    approve.add_argument("name")
    edit = zone.add_parser("edit", help="change a zone's host TTL range, wildcards, RFC 2136 primary and TSIG key")
    edit.add_argument("name")
    _host_rule_arguments(edit)
    edit.add_argument("--rfc2136", metavar="HOST:PORT", help="primary nameserver that takes RFC 2136 updates")
    edit.add_argument("--no-rfc2136", action="store_true", help="stop pushing this zone to a primary")
    edit.add_argument("--transport", choices=("tcp", "udp"), help="for RFC 2136 updates")
    edit.add_argument("--tsig-name", metavar="NAME", help="TSIG key name")
    edit.add_argument("--tsig-algorithm", choices=TSIG_ALGORITHMS)
    edit.add_argument("--tsig-secret-file", metavar="FILE", help="file holding the base64 TSIG secret")
    edit.add_argument("--no-tsig", action="store_true", help="send updates unsigned (not recommended)")
    edit.add_argument(
        "--also-notify",
        action="append",
        metavar="ADDRESS[:PORT]",
        help="a secondary PowerDNS notifies of changes besides the nameservers (repeat for each; replaces the list)",
    )
    edit.add_argument("--no-also-notify", action="store_true", help="notify only the nameservers")
    xfr = zone.add_parser("transfer-key", help="the TSIG keys that secondaries transfer the zone with")
    xfr.add_argument("name", help="the zone")
    xfr_action = xfr.add_subparsers(dest="key_action", metavar="ACTION", parser_class=_Parser)
    xfr_action.required = True
    xfr_add = xfr_action.add_parser("add", help="allow a key; prints a new secret alone on the last line")
    xfr_add.add_argument("key", help="the key's name, such as xfr.dyn.example.org")
    xfr_add.add_argument("--algorithm", choices=TSIG_ALGORITHMS, default="hmac-sha256")
    xfr_add.add_argument("--secret-file", metavar="FILE", help="take the base64 secret from FILE (-: standard input)")
    xfr_action.add_parser("remove", help="take a key's right to transfer the zone away").add_argument("key")
    xfr_action.add_parser("list", help="the zone's transfer keys (never their secrets)")
    check = zone.add_parser("check", help="check that a zone's RFC 2136 primary takes signed updates")
    check.add_argument("name")
    sync = zone.add_parser("sync", help="compare a zone's RFC 2136 primary (AXFR) with the database and fix it")
    sync.add_argument("name")
    delete = zone.add_parser("delete", help="delete a zone (one with hosts only with --with-hosts)")
    delete.add_argument("name")
    delete.add_argument("--with-hosts", action="store_true", help="delete the zone's hosts with it")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _dnssec_arguments(zone)

    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    user.required = True
    add = user.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--email", required=True)
    add.add_argument("--admin", action="store_true", help="make the user an admin")
    add.add_argument("--max-hosts", type=int, metavar="N", help="host limit for this user (-1: unlimited)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.add_parser("list", help="list users")
    for action, text in (
        ("disable", "disable a user: no login, their hosts leave DNS, their sessions end"),
        ("enable", "enable a disabled user: their hosts are back in DNS"),
    ):
        user.add_parser(action, help=text).add_argument("username")
    delete = user.add_parser("delete", help="delete a user with all their hosts")
    delete.add_argument("username")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    limit = user.add_parser("set-limit", help="set a user's host limit")
    limit.add_argument("username")
    limit.add_argument("limit", metavar="N|default|unlimited", help="a number of hosts, default or unlimited")
    reset = user.add_parser("reset-2fa", help="turn off a user's second factor (TOTP): they log in with the password")
    reset.add_argument("username")

    host = sub.add_parser("host", help="manage hosts").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    host.required = True
    add = host.add_parser("add", help="add a host; prints its update secret alone on the last line")
    add.add_argument("username")
    add.add_argument("name", help="full name, such as home.dyn.example.org")
    lst = host.add_parser("list", help="one host a line: name, IPv4, IPv6, last update")
    lst.add_argument("--user", metavar="USERNAME")
    lst.add_argument("--flagged", action="store_true", help="only blocked hosts and hosts flagged for abuse")
    lst.add_argument("--stale", metavar="DAYS", help="only hosts not updated in DAYS days")
    setaddr = host.add_parser("set-address", help="set a host's addresses")
    setaddr.add_argument("name")
    setaddr.add_argument("addresses", nargs="+", metavar="ADDRESS", help="an IPv4 and/or an IPv6 address")
    delete = host.add_parser("delete", help="delete a host")
    delete.add_argument("name")
    hedit = host.add_parser("edit", help="change a host's TTL and wildcard (within its zone's rules)")
    hedit.add_argument("name")
    ttl = hedit.add_mutually_exclusive_group()
    ttl.add_argument("--ttl", metavar="SECONDS", help="TTL of the host's records")
    ttl.add_argument("--zone-ttl", action="store_true", help="use the zone's TTL for hosts again")
    wildcard = hedit.add_mutually_exclusive_group()
    wildcard.add_argument(
        "--wildcard", action="store_true", default=None, help="answer for every name below the host as well"
    )
    wildcard.add_argument("--no-wildcard", dest="wildcard", action="store_false", help="answer for the host only")
    block = host.add_parser("block", help="take a host out of DNS; its updates are answered abuse")
    block.add_argument("name")
    block.add_argument("--reason", required=True, metavar="TEXT", help="why, shown to admins and in host list")
    unblock = host.add_parser("unblock", help="lift a block: the host is back in DNS (unless flagged for abuse)")
    unblock.add_argument("name")
    clear = host.add_parser("clear", help="clear a host's fault counters and abuse flag: back in DNS unless blocked")
    clear.add_argument("name")
    relay_command = host.add_parser("relay", help="forward a host's address changes to third-party dyndns2 services")
    relay_sub = relay_command.add_subparsers(dest="relay_action", metavar="ACTION", parser_class=_Parser)
    relay_sub.required = True
    radd = relay_sub.add_parser("add", help="add a relay (reads its password from standard input or asks)")
    radd.add_argument("name", help="the host, such as home.dyn.example.org")
    radd.add_argument("url", help="the third party's update URL, such as https://members.dyndns.org/nic/update")
    radd.add_argument("--remote-name", required=True, metavar="FQDN", help="the host's name at the third party")
    radd.add_argument("--user", required=True, metavar="NAME", help="the user name at the third party")
    radd.add_argument(
        "--family", default="both", choices=("both", "ipv4", "ipv6"), help="the addresses to send (default both)"
    )
    radd.add_argument("--secret-stdin", action="store_true", help="read the password or token from standard input")
    rlist = relay_sub.add_parser("list", help="one relay a line: id, URL, remote name, user, state, last result")
    rlist.add_argument("name")
    rremove = relay_sub.add_parser("remove", help="remove a relay")
    rremove.add_argument("name")
    rremove.add_argument("id", help="the relay's id, as relay list shows it")
    _related_arguments(host)

    token = sub.add_parser("token", help="manage users' update and API tokens").add_subparsers(
        dest="action", metavar="ACTION", parser_class=_Parser
    )
    token.required = True
    tadd = token.add_parser("add", help="make a token for a user; prints it alone on the last line")
    tadd.add_argument("username")
    tadd.add_argument("name", help="the token's name, for its owner to tell tokens apart")
    tadd.add_argument(
        "--scope",
        action="append",
        choices=[s.value for s in tokens.Scope],
        help="what it may do (repeat; default: update)",
    )
    where = tadd.add_mutually_exclusive_group()
    where.add_argument("--zone", metavar="ZONE", help="only the user's hosts in this zone")
    where.add_argument("--host", action="append", metavar="NAME", help="only this host of the user (repeat)")
    tadd.add_argument("--expires-days", type=int, metavar="DAYS", help="expire after DAYS days (default: never)")
    tlist = token.add_parser("list", help="one token a line: id, name, scopes, hosts, expiry, last use")
    tlist.add_argument("username")
    revoke = token.add_parser("revoke", help="revoke a user's token (by id or name): refused from the next request")
    revoke.add_argument("username")
    revoke.add_argument("token", metavar="ID|NAME")

    sub.add_parser(
        "prune",
        help="delete change-feed entries, spent tokens, expired sessions, events and accounts past [retention], "
        "host history past [updater] history_kept (run daily)",
    )
    sub.add_parser(
        "notify",
        help="mail host owners about stale hosts and abuse flags, remove stale hosts past [notify] "
        "remove_after_days (run daily; needs the interface's packages)",
    )
    legacy = sub.add_parser("import-v02", help="import users, zones and hosts from a ddserver 0.2 database")
    legacy.add_argument("source", metavar="URL", help="the old database, such as mysql://user:pw@host/ddserver")
    legacy.add_argument(
        "--ns",
        action="append",
        required=True,
        metavar="NAME",
        help="a nameserver of the imported zones (repeat for each)",
    )
    legacy.add_argument("--hostmaster", required=True, metavar="EMAIL", help="hostmaster of the imported zones")

    quick = sub.add_parser("run", help="quick start: SQLite, web interface and updater, private PowerDNS")
    quick.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    quick.add_argument("--dns-port", type=int, default=5300, metavar="PORT")
    quick.add_argument("--data-dir", default="var", metavar="DIR", help="where the quick start keeps its files")
    quick.add_argument("--no-serve", action="store_true", help="set up and print what to do, then exit")
    return parser


def _related_arguments(host: Any) -> None:
    """``ddserver host related add|list|edit|remove``: names that follow a host's IPv6 prefix."""
    related_parser = host.add_parser(
        "related", help="names whose addresses follow a host's IPv6 prefix (and optionally its IPv4 address)"
    )
    related_actions = related_parser.add_subparsers(dest="related_action", metavar="ACTION", parser_class=_Parser)
    related_actions.required = True
    radd = related_actions.add_parser("add", help="add a related name to a host")
    radd.add_argument("name", help="the main host, such as home.dyn.example.org")
    radd.add_argument(
        "related", help="the related name in full, one label below the host or below its zone, such as nas.HOST"
    )
    redit = related_actions.add_parser("edit", help="change a related name's identifier, prefix length or IPv4")
    redit.add_argument("name", help="the main host")
    redit.add_argument("related", help="the related name")
    for parser, required in ((radd, True), (redit, False)):
        parser.add_argument("--ifid", required=required, metavar="ID", help="interface identifier, such as ::1:2:3:4")
        parser.add_argument("--prefix-len", metavar="BITS", help="prefix length (default 64)")
        ipv4 = parser.add_mutually_exclusive_group()
        ipv4.add_argument("--ipv4", action="store_true", default=None, help="take the host's IPv4 address too")
        ipv4.add_argument("--no-ipv4", dest="ipv4", action="store_false", help="no IPv4 address (the default)")
    rlist = related_actions.add_parser("list", help="one related name a line: name, identifier/length, IPv4, IPv6")
    rlist.add_argument("name", help="the main host")
    rremove = related_actions.add_parser("remove", help="delete a related name")
    rremove.add_argument("name", help="the main host")
    rremove.add_argument("related", help="the related name")


def _host_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """What a zone lets the owners of its hosts choose."""
    parser.add_argument("--min-ttl", metavar="SECONDS", help="lowest TTL owners may give a host (default 60)")
    parser.add_argument("--max-ttl", metavar="SECONDS", help="highest TTL owners may give a host (default 86400)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--wildcards", action="store_true", default=None, help="owners may make hosts wildcards")
    group.add_argument(
        "--no-wildcards", dest="wildcards", action="store_false", help="no wildcard hosts (removes them)"
    )


def _host_rules(args: argparse.Namespace) -> dict[str, int | bool]:
    """The zone settings for hosts given on the command line."""
    values: dict[str, int | bool] = {}
    for option in ("min_ttl", "max_ttl"):
        text = getattr(args, option)
        if text is not None:
            try:
                values[option] = validate.ttl(text, maximum=2**31 - 1)
            except ValidationError as exc:
                raise ValidationError(f"--{option.replace('_', '-')} {text}: {exc.message}")
    if args.wildcards is not None:
        values["allow_wildcards"] = args.wildcards
    return values


def _rfc2136_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rfc2136", metavar="HOST:PORT", help="primary nameserver that takes RFC 2136 updates")
    parser.add_argument("--transport", choices=("tcp", "udp"), default="tcp", help="for RFC 2136 updates")
    parser.add_argument("--tsig-name", metavar="NAME", help="TSIG key name")
    parser.add_argument("--tsig-algorithm", choices=TSIG_ALGORITHMS, default="hmac-sha256")
    parser.add_argument("--tsig-secret-file", metavar="FILE", help="file holding the base64 TSIG secret")


def existing_database(config: Config) -> Database:
    """The configured database, which must exist already: only ``init`` (and ``run``) create one, so that a
    command run without the configuration it needed leaves no empty SQLite file behind.

    :raises ConfigError: naming the configuration file that was looked for.
    """
    url = DatabaseUrl.parse(config.database.url)
    if url.dialect == "sqlite" and not Path(url.path).exists():
        if config.source is not None:
            raise ConfigError(
                f"database: {url.describe()} does not exist (configuration {config.source}); run 'ddserver init'"
            )
        raise ConfigError(
            f"no configuration file (no --config, no $DDSERVER_CONFIG, and {DEFAULT_PATH} does not exist): the "
            f"default database {url.describe()} does not exist; give --config FILE (the quick start's is "
            "var/ddserver.conf), or create it with 'ddserver init'"
        )
    return _connect(config)


#: The databases this run of the command opened: ``main`` closes their connections at the end, so that
#: an in-process caller (a test) running many commands does not keep a connection open for each.
_OPENED: list[Database] = []


def _connect(config: Config) -> Database:
    db = Database.from_config(config)
    _OPENED.append(db)
    return db


def open_database(config: Config, check: bool = True) -> Database:
    db = existing_database(config)
    if check:
        migrations.check_schema(db)
    return db


def ensure_secret_key(config: Config) -> bool:
    """Write a new secret key file if the configuration names one that is missing.

    :returns: True if a key was written.
    """
    if config.auth.secret_key:
        return False
    return sealing.write_key_file(Path(config.auth.secret_key_file), secrets.new_token()[0], "[auth] secret_key_file")


def cmd_init(config: Config, args: argparse.Namespace) -> int:
    if config.source is None:
        print(f"no configuration file ({DEFAULT_PATH} does not exist): built-in defaults and $DDSERVER_* settings")
    else:
        print(f"configuration {config.source}")
    db = _connect(config)
    applied = migrations.migrate(db)
    version = migrations.current_version(db)
    print(
        f"database {db.url.describe()}: schema version {version}"
        + (f" ({len(applied)} migrations applied)" if applied else " (already current)")
    )
    if ensure_secret_key(config):
        print(f"secret key written to {config.auth.secret_key_file}")
    if sealing.ensure_key_file(config):
        print(f"data key written to {config.auth.data_key_file}")
    return 0


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    db = existing_database(config)
    applied = migrations.migrate(db)
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    print(f"schema version {migrations.current_version(db)}")
    return 0


def _rfc2136_settings(args: argparse.Namespace) -> dict[str, str | None]:
    if not args.rfc2136:
        if args.tsig_name or args.tsig_secret_file:
            raise ValidationError("--tsig-name and --tsig-secret-file go with --rfc2136 HOST:PORT")
        return {}
    from ddserver.config import parse_listen

    try:
        parse_listen(args.rfc2136 if ":" in args.rfc2136 else f"{args.rfc2136}:53")
    except ValueError:
        raise ValidationError(f"--rfc2136 {args.rfc2136!r}: expected HOST:PORT")
    settings: dict[str, str | None] = {
        "rfc2136_server": args.rfc2136 if ":" in args.rfc2136.strip("[]") else f"{args.rfc2136}:53",
        "rfc2136_transport": args.transport,
    }
    if args.tsig_name or args.tsig_secret_file:
        if not (args.tsig_name and args.tsig_secret_file):
            raise ValidationError("--tsig-name and --tsig-secret-file go together")
        try:
            secret = Path(args.tsig_secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValidationError(f"--tsig-secret-file {args.tsig_secret_file}: {exc.strerror}")
        import base64
        import binascii

        try:
            base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(f"--tsig-secret-file {args.tsig_secret_file}: not a base64 secret")
        settings.update(
            tsig_name=validate.hostname(args.tsig_name),
            tsig_algorithm=args.tsig_algorithm,
            tsig_secret=secret,
        )
    return settings


def cmd_zone(config: Config, args: argparse.Namespace) -> int:
    db = open_database(config)
    if args.action == "add" and args.owner:
        return _zone_add_owned(db, config, args)
    if args.action == "add":
        if not args.ns or not args.hostmaster:
            raise ValidationError("zone add: give --ns and --hostmaster (or --owner USER for a user's own zone)")
        name = validate.zone_name(args.name)
        nameservers = [validate.hostname(ns) for ns in args.ns]
        ttl = validate.ttl(args.ttl) if args.ttl is not None else None
        zone = zones.add(
            db,
            name,
            nameservers,
            validate.hostmaster(args.hostmaster),
            ttl=ttl,
            is_public=not args.private,
            description=args.description,
            **_host_rules(args),  # type: ignore[arg-type]
            **_rfc2136_settings(args),  # type: ignore[arg-type]
        )
        print(f"added zone {zone.name} (serial {zone.serial}, nameservers {', '.join(zone.nameservers)})")
        return 0
    if args.action in ("edit", "check", "sync"):
        return _zone_rfc2136(db, config, args)
    if args.action == "transfer-key":
        return _zone_transfer_key(db, config, args)
    if args.action == "delete":
        return _zone_delete(db, args)
    if args.action in ("dnssec", "ds", "key"):
        return _zone_dnssec(db, config, args)
    if args.action == "check-delegations":
        return _check_delegations(db, config)
    if args.action == "approve":
        zone = ownzones.approve(db, zones.get(db, validate.zone_name(args.name)).id, config.zones.grace_period)
        _audit(db, f"zone {zone.name}", "approved")
        print(f"{zone.name}: approved, {_describe_owned(zone)}")
        return 0
    counts = zones.host_counts(db)
    listed = zones.list_all(db)
    owners = {uid: users.get(db, uid).username for uid in {z.owner_id for z in listed if z.owner_id is not None}}
    for zone in listed:
        line = f"{zone.name}\tserial {zone.serial}\tns {','.join(zone.nameservers)}\thosts {counts.get(zone.id, 0)}"
        line += f"\t{_describe_rules(zone)}"
        if zone.owner_id is not None:
            line += f"\towner {owners.get(zone.owner_id, zone.owner_id)}\t{_describe_owned(zone)}"
        if zone.also_notify:
            line += f"\talso-notify {','.join(zone.also_notify)}"
        if zone.rfc2136_server:
            state = "pending" if zone.rfc2136_ok_at is None else f"ok at {_format_time(zone.rfc2136_ok_at)}"
            if zone.rfc2136_error:
                state = f"error at {_format_time(zone.rfc2136_error_at)}: {zone.rfc2136_error}"
            line += f"\trfc2136 {_describe_rfc2136(zone)}\t{state}"
        print(line)
    return 0


def _dnssec_arguments(zone: argparse._SubParsersAction) -> None:
    sign = zone.add_parser("dnssec", help="sign a zone (on: makes keys, prints the DS for the parent) or stop")
    sign.add_argument("name")
    sign.add_argument("state", choices=("on", "off"))
    sign.add_argument("--algorithm", default="ecdsa256", help="ecdsa256 (the default, algorithm 13) or ed25519 (15)")
    sign.add_argument(
        "--confirm-ds-removed",
        action="store_true",
        help="off: the DS records are gone from the parent (and their TTL has passed): delete the keys",
    )
    ds = zone.add_parser("ds", help="print the DS records of a signed zone for its parent")
    ds.add_argument("name")
    key = zone.add_parser("key", help="a signed zone's keys: list, add (a rollover), activate, deactivate, ...")
    key.add_argument("key_action", metavar="KEY-ACTION",
                     choices=("list", "add", "activate", "deactivate", "publish", "unpublish", "remove"))  # fmt: skip
    key.add_argument("name")
    key.add_argument("id", nargs="?", type=int, help="the key's id (see list)")
    key.add_argument("--ksk", action="store_true", help="add: a key-signing key (default: a zone-signing key)")
    key.add_argument("--active", action="store_true", help="add: signing at once (default: published only)")


def _nsec3_mode(db: Database, name: str) -> str:
    """How the zone denies existence when signed (docs/dnssec.md#nsec3-narrow-or-a-chain)."""
    from ddserver.dns import dnssec

    zone = zones.get(db, name)
    if dnssec.nsec3_chained(bool(zones.transfer_keys(db, zone.id)), bool(zone.also_notify)):
        return "NSEC3 with a chain (the zone has secondaries)"
    return "NSEC3 narrow"


def _zone_dnssec(db: Database, config: Config, args: argparse.Namespace) -> int:
    """``zone dnssec``, ``zone ds`` and ``zone key``: never a private key in the output."""
    from ddserver import signing
    from ddserver.store import dnssec as dnssec_store

    name = validate.zone_name(args.name)
    zones.get(db, name)  # NotFound: a clear error
    if args.action == "dnssec" and args.state == "on":
        algorithm = signing.algorithm_of(args.algorithm)
        keys = signing.enable(db, config, name, algorithm)
        _audit(db, f"zone {name}", "DNSSEC on")
        print(f"{name}: DNSSEC on, {_nsec3_mode(db, name)}; keys: " + ", ".join(_describe_key(k) for k in keys))
        print(f"{name}: give the parent zone these DS records:")
        for ds in signing.ds_records(db, name):
            print(ds.text)
        return 0
    if args.action == "dnssec":
        count = signing.disable(db, name, args.confirm_ds_removed)
        _audit(db, f"zone {name}", f"DNSSEC off, {count} keys deleted")
        print(f"{name}: DNSSEC off, {_count(count, 'key')} deleted")
        return 0
    if args.action == "ds":
        records = signing.ds_records(db, name)
        if not records:
            raise ValidationError(f"zone {name} is not signed")
        for ds in records:
            print(ds.text)
        return 0
    action = args.key_action
    if action == "list":
        on, nsec3param, keys = dnssec_store.state(db, name)
        print(f"{name}: DNSSEC {'on' if on else 'off'}, NSEC3PARAM {nsec3param} ({_nsec3_mode(db, name)})")
        for key in keys:
            print(f"{_describe_key(key)}\t{signing.dnskey_record(name, key)}")
        return 0
    if action == "add":
        key = signing.add_key(db, config, name, ksk=args.ksk, active=args.active)
        _audit(db, f"zone {name}", f"DNSSEC key {key.id} added")
        print(f"{name}: added {_describe_key(key)}")
        return 0
    if args.id is None:
        raise ValidationError(f"zone key {action}: give the key's id (ddserver zone key list {name})")
    if action == "remove":
        dnssec_store.remove_key(db, name, args.id)
        print(f"{name}: key {args.id} removed")
    else:
        flag = {"activate": ("active", True), "deactivate": ("active", False),
                "publish": ("published", True), "unpublish": ("published", False)}[action]  # fmt: skip
        key = dnssec_store.set_key(db, name, args.id, **{flag[0]: flag[1]})
        print(f"{name}: {_describe_key(key)}")
    _audit(db, f"zone {name}", f"DNSSEC key {args.id}: {action}")
    return 0


def _describe_key(key: ZoneKey) -> str:
    state = ("active" if key.active else "inactive") + (", published" if key.published else ", unpublished")
    return f"key {key.id} {key.role} algorithm {key.algorithm} tag {key.tag} ({state})"


def _delegation() -> types.ModuleType:
    """The delegation checks (they need dnspython)."""
    try:
        from ddserver.interface import delegation
    except ImportError:
        from ddserver.errors import MissingDependency

        raise MissingDependency("dnspython is not installed: pip install 'ddserver[admin]'")
    return delegation


def _describe_owned(zone: zones.Zone) -> str:
    """A user's zone's state as admins and owners read it: served or not, and why."""
    state = ownzones.state_of(zone)
    text = state.value
    if state is ownzones.ZoneState.GRACE and zone.delegation_failing_since is not None:
        text += f" since {_format_time(zone.delegation_failing_since)}"
    if zone.delegation_error and state is not ownzones.ZoneState.ACTIVE:
        text += f": {zone.delegation_error}"
    return text


def _zone_add_owned(db: Database, config: Config, args: argparse.Namespace) -> int:
    """A zone a user brings, with the service's nameservers; checked at once, served once delegated."""
    name = validate.zone_name(args.name)
    owner = users.get_by_name(db, args.owner)
    nameservers = [validate.hostname(ns) for ns in (args.ns or config.zones.nameservers)]
    if not nameservers:
        raise ValidationError("zone add --owner: set [zones] nameservers (the service's nameservers) or give --ns")
    contact = args.hostmaster or config.zones.hostmaster
    hostmaster = validate.hostmaster(contact) if contact else f"hostmaster.{name}"
    zone = ownzones.add(db, owner.id, name, nameservers, hostmaster, limit=-1, approved=True)
    _audit(db, f"zone {zone.name}", f"added for {owner.username}")
    zone = _delegation().check_and_record(db, config.zones, zone)
    print(
        f"added zone {zone.name} for {owner.username} (nameservers {', '.join(zone.nameservers)}): {_describe_owned(zone)}"
    )
    return 0


def _check_delegations(db: Database, config: Config) -> int:
    """Check every user's zone (``ddserver-delegations.timer``): one line each, its state after the check."""
    delegation = _delegation()
    for zone in ownzones.all_owned(db):
        try:
            checked = delegation.check_and_record(db, config.zones, zone)
        except NotFound:
            continue  # deleted meanwhile
        print(f"{checked.name}\t{_describe_owned(checked)}")
    return 0


def _describe_rfc2136(zone: zones.Zone) -> str:
    """The zone's primary and key as shown to admins: the secret never in full."""
    text = f"{zone.rfc2136_server} {zone.rfc2136_transport}"
    if zone.tsig_name:
        secret = zone.tsig_secret or ""
        text += f" key {zone.tsig_name} ({zone.tsig_algorithm or 'hmac-sha256'}, secret {secret[:4]}...)"
    else:
        text += " unsigned"
    return text


def _zone_rfc2136(db: Database, config: Config, args: argparse.Namespace) -> int:
    zone = zones.get(db, validate.zone_name(args.name))
    if args.action == "edit":
        return _zone_edit(db, zone, args)
    try:
        from ddserver.rfc2136 import admin
    except ImportError:
        from ddserver.errors import MissingDependency

        raise MissingDependency("dnspython is not installed: pip install 'ddserver[rfc2136]'")
    if args.action == "check":
        for line in admin.check(db, config, zone):
            print(f"{zone.name}: {line}")
        print(f"{zone.name}: ok")
        return 0
    fixed = admin.sync(db, config, zone)
    for name in fixed:
        print(f"fixed {name}")
    print(f"{zone.name}: {len(fixed)} names fixed; the server now holds what the database holds")
    return 0


def _zone_edit(db: Database, zone: zones.Zone, args: argparse.Namespace) -> int:
    """Change the host rules and RFC 2136 settings that are given; keep the others."""
    rules = _host_rules(args)
    rfc2136_given = any(
        (args.rfc2136, args.no_rfc2136, args.transport, args.tsig_name, args.tsig_algorithm, args.tsig_secret_file)
    )
    zones.check_ttl_range(int(rules.get("min_ttl", zone.min_ttl)), int(rules.get("max_ttl", zone.max_ttl)))
    notify = _also_notify(args)
    if rfc2136_given or args.no_tsig or (not rules and notify is None):
        # First: it checks all its options before it changes anything.
        _zone_edit_rfc2136(db, zone, args)
    if rules:
        updated = zones.update(db, zone.id, **rules)
        print(f"{zone.name}: {_describe_rules(updated)}")
    if notify is not None:
        updated = zones.update(db, zone.id, also_notify=notify)
        print(f"{zone.name}: also-notify {' '.join(updated.also_notify) or 'none'}")
    return 0


def _also_notify(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The also-notify list given (checked), or None when the command leaves it as it is."""
    if args.no_also_notify and args.also_notify:
        raise ValidationError("give --also-notify or --no-also-notify, not both")
    if args.no_also_notify:
        return ()
    if not args.also_notify:
        return None
    found: list[str] = []
    for text in args.also_notify:
        for item in text.replace(",", " ").split():
            address = validate.notify_address(item)
            if address not in found:
                found.append(address)
    if not found:
        raise ValidationError("--also-notify: give an address, or --no-also-notify")
    return tuple(found)


def _zone_transfer_key(db: Database, config: Config, args: argparse.Namespace) -> int:
    """Add, remove or list the TSIG keys that may transfer a zone from PowerDNS."""
    from ddserver.dns import remote

    zone = zones.get(db, validate.zone_name(args.name))
    if args.key_action == "list":
        for key in zones.transfer_keys(db, zone.id):
            print(f"{key.name}\t{key.algorithm}\tadded {_format_time(key.created_at)}")
        return 0
    name = validate.hostname(args.key)
    if args.key_action == "remove":
        zones.remove_transfer_key(db, zone.id, name)
        _audit(db, f"zone {zone.name}", f"transfer key {name} removed")
        print(f"{zone.name}: transfer key {name} removed")
        return 0
    sealer = sealing.load(config, required=True)
    generated = args.secret_file is None
    if generated:
        secret = secrets.new_tsig_secret(args.algorithm)
    else:
        try:
            text = sys.stdin.read() if args.secret_file == "-" else Path(args.secret_file).read_text("utf-8")
        except OSError as exc:
            raise ValidationError(f"--secret-file {args.secret_file}: {exc.strerror}")
        secret = validate.tsig_secret(text)
    key = zones.add_transfer_key(
        db, zone.id, name, args.algorithm, sealer.seal(secret, remote.transfer_key_context(name))
    )
    _audit(db, f"zone {zone.name}", f"transfer key {name} added")
    if generated:
        print(f"{zone.name}: transfer key {key.name} ({key.algorithm}) added; its secret, shown only now:")
        print(secret)
    else:
        print(f"{zone.name}: transfer key {key.name} ({key.algorithm}) added")
    return 0


def _describe_rules(zone: zones.Zone) -> str:
    wildcards = "wildcards allowed" if zone.allow_wildcards else "no wildcards"
    return f"host TTL {zone.min_ttl}-{zone.max_ttl} s, {wildcards}"


def _zone_edit_rfc2136(db: Database, zone: zones.Zone, args: argparse.Namespace) -> int:
    from ddserver.store import changes
    from ddserver.store import rfc2136 as rfc2136_store

    if args.no_rfc2136 and (args.rfc2136 or args.tsig_name or args.tsig_secret_file):
        raise ValidationError("--no-rfc2136 goes alone")
    if args.no_tsig and (args.tsig_name or args.tsig_secret_file):
        raise ValidationError("give --no-tsig or a key, not both")
    values: dict[str, str | None] = {}
    if args.no_rfc2136:
        values = dict(rfc2136_server=None, tsig_name=None, tsig_algorithm=None, tsig_secret=None)
    else:
        server = args.rfc2136 or zone.rfc2136_server
        if not server:
            raise ValidationError(f"zone {zone.name} has no RFC 2136 server: give --rfc2136 HOST:PORT")
        # The add command's checks, on the settings as they will be (a key file is read only if given).
        given = _rfc2136_settings(
            argparse.Namespace(
                rfc2136=server,
                transport=args.transport or zone.rfc2136_transport,
                tsig_name=args.tsig_name,
                tsig_secret_file=args.tsig_secret_file,
                tsig_algorithm=args.tsig_algorithm or zone.tsig_algorithm or "hmac-sha256",
            )
        )
        if args.rfc2136:
            values["rfc2136_server"] = given["rfc2136_server"]
        if args.transport:
            values["rfc2136_transport"] = args.transport
        if args.no_tsig:
            values.update(tsig_name=None, tsig_algorithm=None, tsig_secret=None)
        elif args.tsig_name:
            values.update({k: v for k, v in given.items() if k.startswith("tsig_")})
        elif args.tsig_algorithm:
            if not zone.tsig_name:
                raise ValidationError("--tsig-algorithm needs a key: give --tsig-name and --tsig-secret-file")
            values["tsig_algorithm"] = args.tsig_algorithm
    if not values:
        raise ValidationError(
            "nothing to change: give --min-ttl, --max-ttl, --wildcards, --no-wildcards, --also-notify, "
            "--no-also-notify, --rfc2136, --transport, a TSIG key, --no-tsig or --no-rfc2136"
        )
    was_pushed = bool(zone.rfc2136_server)
    updated = zones.update(db, zone.id, **values)
    if not updated.rfc2136_server:
        print(f"{zone.name}: no longer pushed by RFC 2136")
        return 0
    if not was_pushed:
        # Pushing starts now; the full comparison requested below brings the server up to date.
        zones.set_rfc2136_state(db, zone.id, position=changes.last_id(db))
    # A new server or key: the worker compares the whole zone before it pushes the next changes.
    rfc2136_store.request_full_sync(db, zone.id)
    print(f"{zone.name}: rfc2136 {_describe_rfc2136(updated)}; the worker will compare the whole zone")
    return 0


def _zone_delete(db: Database, args: argparse.Namespace) -> int:
    """Delete a zone; one with hosts only with --with-hosts (they leave DNS with it)."""
    zone = zones.get(db, validate.zone_name(args.name))
    count = zones.host_counts(db).get(zone.id, 0)
    if count and not args.with_hosts:
        raise Conflict(f"zone {zone.name} has {_count(count, 'host')}: give --with-hosts to delete them with it")
    _confirm(args, f"delete zone {zone.name}" + (f" and its {_count(count, 'host')}" if count else ""), zone.name)
    try:
        count = zones.delete(db, zone.id, with_hosts=args.with_hosts)
    except Conflict as exc:  # a host was added meanwhile
        raise Conflict(f"{exc.message}: give --with-hosts to delete them with it")
    _audit(db, f"zone {zone.name}", f"deleted with {count} hosts")
    print(f"deleted zone {zone.name} with {_count(count, 'host')}")
    if zone.rfc2136_server:
        print(f"{zone.name}: the primary {zone.rfc2136_server} keeps its copy of the zone: remove it there")
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _confirm(args: argparse.Namespace, what: str, answer: str) -> None:
    """Ask before deleting, unless --yes: the admin types ``answer`` (the name) to go on.

    :raises ValidationError: when there is no terminal to ask, or the answer is another.
    """
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise ValidationError(f"no terminal to ask for confirmation: give --yes to {what}")
    print(f"This will {what}. Type {answer} to confirm: ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() != answer:
        raise ValidationError("not confirmed: nothing was deleted")


def _audit(db: Database, subject: str, detail: str) -> None:
    """Enter an admin action in the audit trail, as the web interface's admin pages do."""
    from ddserver.store import events

    events.add(db, "admin", subject, detail=f"{detail} (ddserver command)")


def _read_password(args: argparse.Namespace, config: Config) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise ValidationError("the two passwords differ")
    else:
        raise ValidationError("no terminal to ask for the password: use --password-stdin")
    if len(password) < config.auth.min_password_length:
        raise ValidationError(f"the password must have at least {config.auth.min_password_length} characters")
    return password


def cmd_user(config: Config, args: argparse.Namespace) -> int:
    db = open_database(config)
    if args.action == "add":
        from ddserver import passwords

        username = validate.username(args.username)
        email = validate.email(args.email)
        if args.max_hosts is not None and args.max_hosts < -1:
            raise ValidationError("--max-hosts takes a number of hosts, or -1 for unlimited")
        password = _read_password(args, config)
        user = users.add(
            db,
            username,
            email,
            password_hash=passwords.hash_password(password),
            is_admin=args.admin,
            max_hosts=args.max_hosts,
        )
        print(f"added {'admin' if user.is_admin else 'user'} {user.username} <{user.email}>")
        return 0
    if args.action != "list":
        return _user_action(db, config, args)
    for user in users.list_all(db):
        flags = [
            f
            for f, on in (
                ("admin", user.is_admin),
                ("disabled", user.is_disabled),
                ("inactive", not user.is_active),
                ("unapproved", not user.is_approved),
            )
            if on
        ]
        limit = user.host_limit(config.dns.max_hosts_per_user)
        print(
            f"{user.username}\t{user.email}\thosts {hosts.count_for_user(db, user.id)}/"
            f"{'unlimited' if limit is None else limit}\t{','.join(flags) or '-'}"
        )
    return 0


def _user_action(db: Database, config: Config, args: argparse.Namespace) -> int:
    """disable, enable, delete, set-limit and reset-2fa: what the admin pages do, with the same store calls."""
    from ddserver.store import accounts, sessions

    user = users.get_by_name(db, validate.username(args.username))
    subject = f"user {user.username}"
    if args.action in ("disable", "enable"):
        disable = args.action == "disable"
        if user.is_disabled == disable:
            print(f"{user.username} is {args.action}d already")
            return 0
        users.set_flags(db, user.id, is_disabled=disable)
        ended = sessions.delete_for_user(db, user.id) if disable else 0
        _audit(db, subject, args.action)
        count = hosts.count_for_user(db, user.id)
        if disable:
            print(f"disabled {user.username}: {_count(count, 'host')} out of DNS, {_count(ended, 'session')} ended")
        else:
            print(f"enabled {user.username}: {_count(count, 'host')} back in DNS (unless blocked or flagged)")
        return 0
    if args.action == "delete":
        count = hosts.count_for_user(db, user.id)
        _confirm(args, f"delete user {user.username} and their {_count(count, 'host')}", user.username)
        # The audit entry of the deletion names only the account's pseudonym (docs/privacy.md).
        count = retention.delete_account(db, user.id, detail="(ddserver command)").hosts
        print(f"deleted {user.username} with {_count(count, 'host')}")
        return 0
    if args.action == "set-limit":
        limit = _host_limit(args.limit)
        users.set_max_hosts(db, user.id, limit)
        default = config.dns.max_hosts_per_user
        shown = {None: f"default ({'unlimited' if default < 0 else default})", users.UNLIMITED: "unlimited"}
        text = shown.get(limit, str(limit))
        _audit(db, subject, f"host limit set to {'default' if limit is None else text}")
        count = hosts.count_for_user(db, user.id)
        allowed = users.get(db, user.id).host_limit(default)
        note = "" if allowed is None or count <= allowed else ": they keep them, but cannot add more"
        print(f"{user.username}: host limit {text}, {_count(count, 'host')}{note}")
        return 0
    if not user.totp_secret:
        print(f"{user.username} has no second factor")
        return 0
    accounts.set_totp(db, user.id, None, None)
    _audit(db, subject, "second factor turned off")
    print(f"{user.username}: second factor off; they log in with their password alone and may set it up again")
    return 0


def _host_limit(text: str) -> int | None:
    """``N``, ``default`` (None: the configured [dns] max_hosts_per_user) or ``unlimited`` (-1)."""
    word = text.strip().lower()
    if word == "default":
        return None
    if word in ("unlimited", "-1"):
        return users.UNLIMITED
    if word.isdigit() and int(word) <= users.MAX_HOST_LIMIT:
        return int(word)
    raise ValidationError(
        f"host limit {text!r}: give a number of hosts (0 to {users.MAX_HOST_LIMIT}), default or unlimited"
    )


def _format_time(stamp: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)) if stamp else "never"


def cmd_host(config: Config, args: argparse.Namespace) -> int:
    db = open_database(config)
    if args.action == "add":
        user = users.get_by_name(db, validate.username(args.username))
        name = validate.hostname(args.name, reserved=() if user.is_admin else config.dns.reserved_names)
        secret = secrets.new_host_secret()
        host = hosts.add(
            db,
            user.id,
            name,
            secrets.hash_host_secret(secret, config.auth.pepper),
            default_limit=config.dns.max_hosts_per_user,
        )
        print(f"added {host.name} for {user.username}")
        print(f"update URL: {config.update_url}/nic/update?hostname={host.name}")
        print(f"update user: {host.name}; the secret below is shown only now:")
        print(secret)
        return 0
    if args.action == "list":
        return _host_list(db, args)
    host = hosts.get(db, validate.hostname(args.name))
    if args.action == "related":
        return _host_related(config, db, host, args)
    if host.is_related and args.action != "delete":
        main = hosts.get_by_id(db, host.parent_id)  # type: ignore[arg-type]
        raise ValidationError(
            f"{host.name} is a related name of {main.name}: it follows that host "
            f"(see 'ddserver host related list {main.name}')"
        )
    if args.action in ("block", "unblock", "clear"):
        return _host_flags(db, host, args)
    if args.action == "delete":
        hosts.delete(db, host.id)
        print(f"deleted {host.name}")
        return 0
    if args.action == "edit":
        return _host_edit(db, host, args)
    if args.action == "relay":
        return _host_relay(config, db, host, args)
    ipv4: str | object | None = KEEP
    ipv6: str | object | None = KEEP
    for text in args.addresses:
        address = validate.ip_address(text)
        validate.check_host_address(address)
        if address.version == 4:
            if ipv4 is not KEEP:
                raise ValidationError("give at most one IPv4 address")
            ipv4 = str(address)
        else:
            if ipv6 is not KEEP:
                raise ValidationError("give at most one IPv6 address")
            ipv6 = address.compressed
    result = hosts.set_addresses(db, host.id, ipv4=ipv4, ipv6=ipv6)  # type: ignore[arg-type]
    state = "changed" if result.changed else "unchanged"
    print(f"{host.name}\t{result.host.ipv4 or '-'}\t{result.host.ipv6 or '-'}\t{state}")
    return 0


def _relay_state(item: relays.Relay) -> str:
    if item.stopped:
        return "stopped"
    return "pending" if item.pending else "sent"


def _host_relay(config: Config, db: Database, host: hosts.Host, args: argparse.Namespace) -> int:
    """``ddserver host relay add|list|remove``: the secret is read, sealed and never printed."""
    if args.relay_action == "list":
        for item in relays.for_host(db, host.id):
            last = f"{item.last_result} {_format_time(item.last_at)}" if item.last_result else "-"
            print(f"{item.id}\t{item.url}\t{item.remote_name}\t{item.username}\t{_relay_state(item)}\t{last}")
        return 0
    if args.relay_action == "remove":
        if not args.id.strip().isdigit():
            raise ValidationError(f"relay {args.id!r}: give the relay's id, as 'ddserver host relay list' shows it")
        found = [item for item in relays.for_host(db, host.id) if item.id == int(args.id)]
        if not found:
            raise NotFound(f"{host.name} has no relay {args.id}")
        relays.remove(db, found[0].id)
        _audit(db, f"host {host.name}", f"relay {found[0].id} to {found[0].url} removed")
        print(f"removed relay {found[0].id} of {host.name}")
        return 0
    if not config.relay.max_per_host:
        raise ValidationError("relays are turned off ([relay] max_per_host = 0)")
    url = relay.check_url(args.url)
    remote_name = relay.check_remote_name(args.remote_name)
    username = relay.check_username(args.user)
    sealer = sealing.load(config, required=True)
    if args.secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        secret = getpass.getpass("Password or token at the third party: ")
    else:
        raise ValidationError("no terminal to ask for the password: use --secret-stdin")
    secret = relay.check_secret(secret)
    added = relays.add(
        db,
        host.id,
        url=url,
        remote_name=remote_name,
        username=username,
        sealed_secret=sealer.seal(secret, relays.secret_context(host.id)),
        family=relay.check_family(args.family).value,
        limit=config.relay.max_per_host,
    )
    _audit(db, f"host {host.name}", f"relay {added.id} to {url} added")
    print(f"added relay {added.id} of {host.name} to {url} as {remote_name}")
    return 0


def cmd_token(config: Config, args: argparse.Namespace) -> int:
    db = open_database(config)
    user = users.get_by_name(db, validate.username(args.username))
    if args.action == "add":
        name = " ".join(args.name.split())
        if not name or len(name) > 64 or not name.isprintable():
            raise ValidationError("the token's name: 1 to 64 printable characters")
        zone_id = zones.get(db, validate.zone_name(args.zone)).id if args.zone else None
        host_ids = None
        if args.host:
            named = [hosts.get(db, validate.hostname(h)) for h in args.host]
            if any(h.user_id != user.id for h in named):
                raise ValidationError(f"a token of {user.username} can only cover their own hosts")
            host_ids = [h.id for h in named]
        expires_at = None
        if args.expires_days is not None:
            if not 1 <= args.expires_days <= 3650:
                raise ValidationError("--expires-days: give 1 to 3650 days")
            expires_at = int(time.time()) + args.expires_days * 86400
        scopes = [tokens.Scope(s) for s in args.scope or ["update"]]
        token, token_id = tokens.create_grant(
            db, user.id, name, scopes, zone_id=zone_id, host_ids=host_ids, expires_at=expires_at
        )
        _audit(db, f"user {user.username}", f"token {name!r} created")
        print(f"made token {token_id} {name!r} for {user.username}; log in as {user.username} with it:")
        print(token)
        return 0
    found = tokens.list_grants(db, user.id)
    if args.action == "list":
        for info in found:
            where = (
                ",".join(info.hosts) or "none"
                if info.hosts is not None
                else (f"zone {info.zone}" if info.zone else "all")
            )
            print(
                f"{info.id}\t{info.name}\t{tokens.format_scopes(info.scopes) or '-'}\t{where}\t"
                f"expires {_format_time(info.expires_at)}\tlast used {_format_time(info.last_used_at)}"
            )
        return 0
    wanted = args.token.strip()
    matching = [t for t in found if str(t.id) == wanted] or [t for t in found if t.name == wanted]
    if not matching:
        raise NotFound(f"{user.username} has no token {wanted!r}")
    if len(matching) > 1:
        raise ValidationError(f"{user.username} has several tokens named {wanted!r}: give the id")
    tokens.revoke(db, user.id, matching[0].id)
    _audit(db, f"user {user.username}", f"token {matching[0].id} revoked")
    print(f"revoked token {matching[0].id} {matching[0].name!r} of {user.username}")
    return 0


def _host_list(db: Database, args: argparse.Namespace) -> int:
    """One host a line; with --flagged or --stale, always seven columns: name, IPv4, IPv6, last update,
    owner, flags and reason (``-`` for none)."""
    user_id = users.get_by_name(db, args.user).id if args.user else None
    updated_before = None
    if args.stale is not None:
        if not args.stale.strip().isdigit() or not 0 < int(args.stale) <= 100_000:
            raise ValidationError(f"--stale {args.stale!r}: give a number of days, such as 90")
        updated_before = int(time.time()) - int(args.stale) * 86400
    long = args.flagged or updated_before is not None
    found = hosts.search(db, user_id=user_id, flagged=args.flagged, updated_before=updated_before, limit=2**31 - 1)
    for host in found[0]:
        flags = ",".join(f for f, on in (("blocked", host.blocked), ("abuse", host.abuse)) if on)
        line = f"{host.name}\t{host.ipv4 or '-'}\t{host.ipv6 or '-'}\t{_format_time(host.last_update_at)}"
        if long:
            reason = host.blocked_reason if host.blocked or host.abuse else None
            line += f"\t{host.username}\t{flags or '-'}\t{reason or '-'}"
        elif flags:
            line += f"\t{flags}"
        print(line)
    return 0


def _related_line(host: hosts.Host) -> str:
    ipv4 = "ipv4" if host.follow_ipv4 else "-"
    return f"{host.name}\t{host.ifid}/{host.prefix_len}\t{ipv4}\t{host.ipv4 or '-'}\t{host.ipv6 or '-'}"


def _host_related(config: Config, db: Database, host: hosts.Host, args: argparse.Namespace) -> int:
    """Related names of a host: the same store calls as the host page's forms, one line per name (name,
    identifier/prefix length, whether it takes the IPv4 address, IPv4, IPv6)."""
    if host.is_related:
        raise ValidationError(f"{host.name} is a related name itself; give its main host")
    if args.related_action == "list":
        for row in related.of(db, host.id):
            print(_related_line(row))
        return 0
    if "." not in args.related.strip().rstrip("."):
        raise ValidationError(
            f"{args.related!r}: give the related name in full, such as {args.related.strip()}.{host.name}"
        )
    name = validate.hostname(args.related)
    if args.related_action == "add":
        prefix_len = prefixes.DEFAULT_PREFIX_LEN if args.prefix_len is None else args.prefix_len
        added = related.add(
            db,
            host.id,
            name,
            args.ifid,
            prefix_len=prefixes.prefix_len(prefix_len),
            follow_ipv4=bool(args.ipv4),
            limit=config.dns.max_related_per_host,
        )
        print(_related_line(added))
        return 0
    current = next((r for r in related.of(db, host.id) if r.name == name), None)
    if current is None:
        raise NotFound(f"{name} is not a related name of {host.name}")
    if args.related_action == "remove":
        related.remove(db, host.id, current.id)
        print(f"removed {name}")
        return 0
    edited = related.edit(
        db,
        host.id,
        current.id,
        current.ifid if args.ifid is None else args.ifid,  # type: ignore[arg-type]
        prefix_len=prefixes.prefix_len(current.prefix_len if args.prefix_len is None else args.prefix_len),  # type: ignore[arg-type]
        follow_ipv4=current.follow_ipv4 if args.ipv4 is None else args.ipv4,
    )
    print(_related_line(edited))
    return 0


def _host_flags(db: Database, host: hosts.Host, args: argparse.Namespace) -> int:
    """block, unblock and clear: what the admin pages' buttons do, with the same store call."""
    subject = f"host {host.name}"
    if args.action == "block":
        reason = " ".join(args.reason.split())
        if not reason:
            raise ValidationError("--reason: say why the host is blocked")
        if len(reason) > hosts.REASON_MAX or not reason.isprintable():
            raise ValidationError(f"--reason: at most {hosts.REASON_MAX} printable characters")
        updated = hosts.set_flags(db, host.id, blocked=True, reason=reason)
        _audit(db, subject, f"block: {reason}")
    elif args.action == "unblock":
        if not host.blocked:
            print(f"{host.name} is not blocked")
            return 0
        # The reason goes with the block; an abuse flag keeps its own until cleared.
        updated = hosts.set_flags(db, host.id, blocked=False, reason=host.blocked_reason if host.abuse else None)
        _audit(db, subject, "unblock")
    else:
        # A blocked host keeps its block and reason; otherwise the reason was the abuse flag's.
        updated = hosts.set_flags(db, host.id, abuse=False, reset_faults=True, reason=KEEP if host.blocked else None)
        _audit(db, subject, "clear-abuse")
    state = "blocked" if updated.blocked else "flagged for abuse" if updated.abuse else "in DNS"
    if updated.blocked or updated.abuse:
        state += f" ({updated.blocked_reason or 'no reason given'}), out of DNS"
    print(f"{args.action}ed {host.name}: {state}")
    return 0


def _host_edit(db: Database, host: hosts.Host, args: argparse.Namespace) -> int:
    """Set the TTL and wildcard given; the zone's range and wildcard rule apply to admins too."""
    ttl: int | object | None = KEEP
    if args.zone_ttl:
        ttl = None
    elif args.ttl is not None:
        try:
            ttl = validate.ttl(args.ttl, maximum=2**31 - 1)
        except ValidationError as exc:
            raise ValidationError(f"--ttl {args.ttl}: {exc.message}")
    wildcard = KEEP if args.wildcard is None else args.wildcard
    if ttl is KEEP and wildcard is KEEP:
        raise ValidationError("nothing to change: give --ttl SECONDS, --zone-ttl, --wildcard or --no-wildcard")
    updated = hosts.set_properties(db, host.id, ttl=ttl, wildcard=wildcard)  # type: ignore[arg-type]
    ttl_text = f"ttl {updated.ttl}" if updated.ttl is not None else "zone ttl"
    print(f"{updated.name}\t{ttl_text}\t{'wildcard' if updated.wildcard else 'no wildcard'}")
    return 0


def cmd_import_v02(config: Config, args: argparse.Namespace) -> int:
    from ddserver.store import legacy

    db = open_database(config)
    data = legacy.read(Database(args.source))
    names: dict[str, str] = {}

    def keep(key: str, check, text: str) -> None:  # type: ignore[no-untyped-def]
        try:
            names[f"{key}:{text}"] = check(text)
        except ValidationError:
            pass

    for suffix in data.suffixes:
        keep("zone", validate.zone_name, suffix["name"])
    for user in data.users:
        keep("user", validate.username, user["username"])
        keep("email", validate.email, user["email"])
    for host in data.hosts:
        keep("label", validate.label, host["hostname"])
    report = legacy.import_all(
        db,
        data,
        names=names,
        nameservers=[validate.hostname(ns) for ns in args.ns],
        hostmaster=validate.hostmaster(args.hostmaster),
    )
    print(f"imported {len(report.zones)} zones, {len(report.users)} users, {len(report.hosts)} hosts")
    for note in report.skipped:
        print(f"skipped {note}")
    return 0


def retention_ages(config: Config) -> Ages:
    """How long ``ddserver prune`` keeps each kind of data; rate-limit facts at least as long as the longest
    window that counts them, whatever ``[retention] events_days`` says."""
    from ddserver.store.events import MAIL_WINDOW

    section = config.retention
    return Ages(
        changes=config.dns.change_retention,
        audit=section.audit_days * 86400,
        events=max(section.events_days * 86400, config.interface.login_window, MAIL_WINDOW),
        rate_limits=config.updater.auth_failure_window,
        unactivated=max(section.unactivated_days * 86400, config.auth.token_lifetime)
        if section.unactivated_days
        else 0,
    )


def cmd_prune(config: Config, args: argparse.Namespace) -> int:
    db = open_database(config)
    done = retention.prune(db, retention_ages(config))
    print("pruned " + ", ".join(f"{count} {what}" for what, count in done))
    updates, failures = history.prune(
        db, updates_kept=config.updater.history_kept, failures_kept=config.updater.auth_trail_kept
    )
    print(f"pruned {updates} host updates and {failures} failed logins beyond the last ones kept per host")
    return 0


def cmd_notify(config: Config, args: argparse.Namespace) -> int:
    try:
        from ddserver.interface import notify
    except ImportError:
        from ddserver.errors import MissingDependency

        raise MissingDependency(
            "the interface's packages are not installed (mail templates): run 'ddserver notify' where "
            "ddserver-interface or ddserver-bundle is installed"
        )
    report = notify.run(config, open_database(config))
    for line in report.lines():
        print(line)
    if report.failed:
        print(
            f"ddserver: {report.failed + report.left} notices could not be sent ([mail] host {config.mail.host}); "
            "they are sent on the next run",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from ddserver import quickstart

    return quickstart.run(config, args)


COMMANDS = {
    "init": cmd_init,
    "migrate": cmd_migrate,
    "zone": cmd_zone,
    "user": cmd_user,
    "host": cmd_host,
    "import-v02": cmd_import_v02,
    "prune": cmd_prune,
    "notify": cmd_notify,
    "run": cmd_run,
    "token": cmd_token,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body() -> int:
        config = load_config(args.config)
        if args.command == "run":
            config = quickstart_config(config, args)
        setup_logging(config, "ddserver")
        try:
            return COMMANDS[args.command](config, args)
        finally:
            while _OPENED:
                _OPENED.pop().close_all()

    try:
        return run(body, "ddserver")
    except NotFound as exc:  # pragma: no cover - run() handles every DDServerError
        print(f"ddserver: {exc.message}", file=sys.stderr)
        return EXIT_ERROR


def quickstart_config(config: Config, args: argparse.Namespace) -> Config:
    """The quick start keeps its database and key in --data-dir unless a config file says otherwise."""
    if config.source is None and "DDSERVER_DATABASE_URL" not in os.environ:
        data = Path(args.data_dir).resolve()
        config = config.replace("database", url=f"sqlite:///{data / 'ddserver.sqlite3'}")
        config = config.replace(
            "auth", secret_key_file=str(data / "ddserver.secret"), data_key_file=str(data / "ddserver.datakey")
        )
    if config.source is None and "DDSERVER_HTTP_BASE_URL" not in os.environ:
        # Setup help (host add's update URL) names the address the quick start serves on.
        from ddserver import quickstart

        config = config.replace("http", base_url=quickstart.base_url(args.listen))
    return config


__all__ = ["DDServerError", "build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
