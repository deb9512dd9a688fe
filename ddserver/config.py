"""Configuration: an INI file plus ``DDSERVER_<SECTION>_<KEY>`` overrides, loaded once into typed sections.

Every key is declared here with its default and its documentation; the example file
``etc/ddserver/ddserver.conf`` and ``docs/configuration.md`` are generated from these declarations.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import os
import re
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ddserver.errors import ConfigError

DEFAULT_PATH = Path("/etc/ddserver/ddserver.conf")
ENV_PREFIX = "DDSERVER_"


def option(
    default: Any,
    doc: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    check: Callable[[Any], str | None] | None = None,
    secret: bool = False,
) -> Any:
    """Declare one configuration key.

    :param default: the value used when neither the file nor the environment sets the key.
    :param doc: one or two sentences for the example file and the reference.
    :param check: returns what was expected (a phrase) when the parsed value is not acceptable.
    :param secret: the value is never printed (repr, logs, error messages).
    """
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum, "check": check}
    meta["secret"] = secret
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: tuple(default), metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


def _check_listen(value: str) -> str | None:
    try:
        parse_listen(value)
    except ValueError:
        return "HOST:PORT, such as 127.0.0.1:8080 or [::1]:8080"
    return None


def _check_networks(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return "a list of IP addresses or networks, such as 127.0.0.1, 10.0.0.0/8, ::1"
    return None


def _check_url(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc and not parts.query and not parts.fragment:
        return None
    return "empty or an http(s) URL such as https://ipv4.update.example.org"


def _check_db_url(value: str) -> str | None:
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return None
    if value.startswith(("mysql://", "mariadb://", "mysql+pymysql://")):
        return None
    return "sqlite:///PATH or mysql://USER:PASSWORD@HOST:PORT/DATABASE"


def parse_listen(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """Split ``HOST:PORT``, ``[V6]:PORT`` or ``PORT`` into a host and a port.

    :raises ValueError: when the value is not of that form.
    """
    value = value.strip()
    if value.isdigit():
        host, port_text = default_host, value
    elif value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ValueError(value)
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(value)
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(value)
    return host, int(port_text)


@dataclass(frozen=True)
class DatabaseSection:
    """[database]: where the shared database is."""

    url: str = option(
        "sqlite:///ddserver.sqlite3",
        "Database URL: sqlite:///ddserver.sqlite3 (a path relative to the working folder), "
        "sqlite:////var/lib/ddserver/ddserver.sqlite3 (absolute), or mysql://user:password@host:3306/dbname "
        "(add ?unix_socket=/run/mysqld/mysqld.sock for a socket).",
        check=_check_db_url,
        secret=True,
    )
    connect_timeout: int = option(
        3,
        "Seconds a new connection to MySQL/MariaDB may take, login included, before the request or command "
        "that needs it fails (the updater answers 911, the interface 503).",
        minimum=1,
        maximum=300,
    )
    read_timeout: int = option(
        5,
        "Seconds the interface and the updater wait for each answer of MySQL/MariaDB (each read or write on a "
        "connection) before they answer 911 (updater) or 503 (interface) and close the connection: a database "
        "that stops answering (a network partition) costs a request about connect_timeout + read_timeout. "
        "Keep the sum below what routers wait for an answer (often 10 to 30 s).",
        minimum=1,
        maximum=3600,
    )
    job_read_timeout: int = option(
        60,
        "The same wait for everything else: ddserver commands (migrate, import, prune...), the recursor (its "
        "full load included) and the RFC 2136 worker, whose big reads must not be cut short. A silent database "
        "holds them this long, then a command fails and the daemons retry. Raise it if a command on a large "
        "database stops with 'did not answer'.",
        minimum=1,
        maximum=86400,
    )
    causal_reads: str = option(
        "auto",
        "Galera: each read waits until its node has applied every commit the cluster acknowledged before it "
        "(wsrep_sync_wait = 1), so an update sent to one node right after another node answered one sees it. "
        "auto: when the server is a Galera node (wsrep_on); yes: always (MariaDB); no: never.",
        choices=("auto", "yes", "no"),
    )


@dataclass(frozen=True)
class AuthSection:
    """[auth]: keys, sessions and passwords."""

    secret_key: str = option(
        "",
        "Key that signs sessions and CSRF tokens. Empty: read from secret_key_file "
        "(ddserver init writes it). All interface nodes need the same key.",
        secret=True,
    )
    secret_key_file: str = option(
        "ddserver.secret",
        "File holding the secret key when secret_key is empty (relative to the working folder).",
    )
    data_key: str = option(
        "",
        "Key that encrypts secrets kept in the database (DNSSEC private keys, transfer TSIG secrets, relay "
        "passwords): 32 bytes in base64. Empty: read from data_key_file (ddserver init writes it). Every node "
        "that reads those secrets (recursor, interface, updater) needs the same key.",
        secret=True,
    )
    data_key_file: str = option(
        "ddserver.datakey",
        "File holding the data key when data_key is empty (relative to the working folder).",
    )
    old_data_keys: tuple[str, ...] = option(
        (),
        "Former data keys, comma-separated: secrets sealed with them stay readable after data_key changed.",
        secret=True,
    )
    pepper: str = option(
        "",
        "Optional key mixed into the stored hash of every host secret (HMAC-SHA256). Empty: plain SHA-256. "
        "Changing it invalidates every host secret hashed with it.",
        secret=True,
    )
    session_lifetime: int = option(86400, "Seconds a web session lasts without 'keep me logged in'.", minimum=60)
    remember_lifetime: int = option(30 * 86400, "Seconds a web session lasts with 'keep me logged in'.", minimum=60)
    token_lifetime: int = option(
        86400, "Seconds an activation, password reset or e-mail confirmation link stays valid.", minimum=60
    )
    min_password_length: int = option(10, "Shortest password accepted for user accounts.", minimum=6, maximum=128)


@dataclass(frozen=True)
class DnsSection:
    """[dns]: defaults for zones and hosts."""

    default_ttl: int = option(60, "TTL of host records when neither the host nor the zone sets one.", minimum=1)
    max_hosts_per_user: int = option(
        5, "Hosts a user may have unless an admin sets another limit for them (-1: unlimited).", minimum=-1
    )
    max_related_per_host: int = option(
        10,
        "Related names a host may have (names whose addresses follow the host's IPv6 prefix and optionally its "
        "IPv4 address; they do not count as hosts). 0: none, -1: unlimited.",
        minimum=-1,
    )
    reserved_names: tuple[str, ...] = option(
        (
            "www",
            "ns",
            "ns1",
            "ns2",
            "ns3",
            "mail",
            "smtp",
            "imap",
            "pop",
            "pop3",
            "mx",
            "ftp",
            "admin",
            "root",
            "hostmaster",
            "postmaster",
            "webmaster",
            "abuse",
            "localhost",
            "autoconfig",
            "autodiscover",
        ),
        "Labels that users may not take as host names, comma-separated (admins may).",
    )
    change_retention: int = option(
        86400,
        "Seconds that entries of the change feed are kept. A follower (recursor, RFC 2136 worker) that "
        "falls further behind reloads in full.",
        minimum=60,
    )


def parse_server(value: str, default_port: int = 53) -> tuple[str, int]:
    """Split ``HOST``, ``HOST:PORT``, ``V6`` or ``[V6]:PORT`` into a host and a port (``default_port`` when none).

    :raises ValueError: when the value is not of that form.
    """
    value = value.strip()
    if not value:
        raise ValueError(value)
    if value.startswith("[") or value.count(":") == 1:
        return parse_listen(value)
    if ":" in value:
        ipaddress.IPv6Address(value)
    return value, default_port


def _check_servers(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            parse_server(value)
        except ValueError:
            return "addresses such as 127.0.0.1:53, [::1]:53 or 192.0.2.1 (port 53)"
    return None


def _check_hostnames(values: tuple[str, ...]) -> str | None:
    for value in values:
        if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}\.?", value.lower()):
            return "host names such as ns1.example.org, comma-separated"
    return None


@dataclass(frozen=True)
class ZonesSection:
    """[zones]: zones that users bring (their own domain, delegated to this service's nameservers)."""

    nameservers: tuple[str, ...] = option(
        (),
        "The service's nameservers, comma-separated (ns1.example.org, ns2.example.org): the NS records of "
        "users' zones, and what the parent of such a zone must delegate it to. Empty: users cannot add zones.",
        check=_check_hostnames,
    )
    delegation_resolver: tuple[str, ...] = option(
        ("127.0.0.1:53",),
        "Resolvers asked for a user zone's delegation (HOST:PORT, comma-separated, tried in turn): the parent's "
        "NS records, then the parent's servers for the zone's NS. A server authoritative for the parent may "
        "be given instead (it is then asked directly).",
        check=_check_servers,
    )
    check_timeout: float = option(3.0, "Seconds to wait for one answer during a delegation check.", minimum=0.1)
    max_per_user: int = option(2, "Zones a user may own (0: users cannot add zones; -1: unlimited).", minimum=-1)
    approval: bool = option(False, "Whether an admin must approve a user's zone before it is served.")
    grace_period: int = option(
        259200,
        "Seconds that a user zone whose delegation went away is still served (its owner sees why) before "
        "'ddserver zone check-delegations' suspends it; it is served again once the delegation is back.",
        minimum=0,
    )
    hostmaster: str = option(
        "",
        "SOA contact of users' zones (an e-mail address). Empty: hostmaster@ the zone itself.",
    )


@dataclass(frozen=True)
class SignupSection:
    """[signup]: how people get accounts."""

    mode: str = option(
        "manual",
        "automatic: anyone signs up and activates by e-mail; semi-automatic: after activation an admin "
        "approves; manual: no sign-up, admins create accounts.",
        choices=("automatic", "semi-automatic", "manual"),
    )
    allowed_email_domains: tuple[str, ...] = option(
        (), "If set, only addresses in these domains may sign up, comma-separated."
    )


@dataclass(frozen=True)
class MailSection:
    """[mail]: the SMTP server that sends activation, reset and notification mail."""

    host: str = option("localhost", "SMTP server. Empty: mail is not sent (and is logged instead).")
    port: int = option(25, "SMTP port (25, 587 with starttls, 465 with ssl).", minimum=1, maximum=65535)
    security: str = option("plain", "Transport security.", choices=("plain", "starttls", "ssl"))
    username: str = option("", "SMTP login; empty for none.")
    password: str = option("", "SMTP password.", secret=True)
    sender: str = option("ddserver@localhost", "From address of the mail ddserver sends.")
    timeout: int = option(10, "Seconds to wait for the SMTP server.", minimum=1)


@dataclass(frozen=True)
class CaptchaSection:
    """[captcha]: the sign-up captcha, checked with the provider's siteverify endpoint."""

    provider: str = option(
        "none", "Captcha provider.", choices=("none", "recaptcha", "recaptcha-v3", "hcaptcha", "turnstile")
    )
    site_key: str = option("", "Public site key given by the provider.")
    secret_key: str = option("", "Secret key given by the provider.", secret=True)
    verify_url: str = option("", "Siteverify URL. Empty: the provider's own.")
    min_score: float = option(0.5, "Lowest score accepted from reCAPTCHA v3.", minimum=0.0, maximum=1.0)


@dataclass(frozen=True)
class HttpSection:
    """[http]: how the web components are reached."""

    base_url: str = option(
        "http://localhost:8080", "Public URL of the web interface, used in mail and in the setup help."
    )
    update_url: str = option("", "Public URL of the updater, used in the setup help. Empty: the same as base_url.")
    update_url_ipv4: str = option(
        "",
        "Public URL of the updater under a name that has only an A record (such as "
        "https://ipv4.update.example.org), so that a browser reaches it over IPv4 whatever else it has. With "
        "update_url_ipv6 set too, a host's page sets both addresses in one click (its script asks each name "
        "for the visitor's address) and the setup help gives a browser update URL per family. Empty: none.",
        check=_check_url,
    )
    update_url_ipv6: str = option(
        "",
        "The same under a name that has only an AAAA record (such as https://ipv6.update.example.org). The "
        "TLS certificate of the updater must cover both names. Empty: none.",
        check=_check_url,
    )
    trusted_proxies: tuple[str, ...] = option(
        ("127.0.0.1", "::1"),
        "Addresses or networks of reverse proxies whose X-Forwarded-For and X-Real-IP headers are believed.",
        check=_check_networks,
    )


@dataclass(frozen=True)
class LoggingSection:
    """[logging]: what is logged and where."""

    level: str = option("info", "Lowest level logged.", choices=("debug", "info", "warning", "error"))
    file: str = option("", "Log file. Empty: standard error (the journal under systemd).")
    format: str = option(
        "text",
        "text: one line per entry for people (time, process, level, logger, message, [request id]); json: one "
        "JSON object per line for log collectors (ts, level, component, logger, pid, message, and where known "
        "request_id, client, host, result). Secrets are never logged in either (docs/operations.md).",
        choices=("text", "json"),
    )
    requests: bool = option(
        False,
        "Log one line per HTTP request of the interface and the updater (method, route, status, time; for "
        "updates the host names and answers), at level info. Off by default: at a thousand updates a "
        "second it is a thousand lines a second.",
    )


@dataclass(frozen=True)
class InterfaceSection:
    """[interface]: the web interface (ddserver-interface, ddserver-bundle)."""

    listen: str = option("127.0.0.1:8080", "Address the web interface listens on.", check=_check_listen)
    threads: int = option(8, "Worker threads of the web server.", minimum=1, maximum=256)
    site_name: str = option("ddserver", "Name of the service, shown in page titles and mail.")
    default_language: str = option(
        "en", "Language of the pages when the browser asks for none we have.", choices=("en", "de")
    )
    secure_cookies: str = option(
        "auto",
        "Mark cookies Secure: auto (when the request came over TLS, directly or through a trusted proxy, "
        "or base_url is https), yes, or no.",
        choices=("auto", "yes", "no"),
    )
    login_window: int = option(900, "Seconds over which failed logins are counted for the rate limits.", minimum=10)
    login_failures_per_address: int = option(
        20,
        "Failed logins (and sign-ups answered 'name taken') from one client address within login_window "
        "before it must wait; browsers holding a device cookie for the account are not held to it.",
        minimum=1,
    )
    login_failures_per_account: int = option(
        10,
        "Failed logins for one account (its name and e-mail count together) from clients without a device "
        "cookie for it within login_window before they must wait; also the limit of each browser that holds "
        "one, counted on its own.",
        minimum=1,
    )
    mail_per_address: int = option(
        10, "Sign-ups and password-reset requests from one client address per hour.", minimum=1
    )
    ipv4_check_url: str = option(
        "",
        "URL answering the visitor's address as JSON over IPv4 only (such as https://ipv4.example.org/myip), "
        "used by the start page to show both addresses and by a host's page to set both. Empty: the "
        "updater's /api/myip under [http] update_url_ipv4 when that is set, else only the address the page "
        "was loaded from.",
    )
    ipv6_check_url: str = option(
        "",
        "The same over IPv6 only (such as https://ipv6.example.org/myip). Empty: the updater's /api/myip "
        "under [http] update_url_ipv6 when that is set.",
    )
    reverse_dns: bool = option(True, "Show the reverse DNS name of the visitor's address on the start page.")
    metrics: bool = option(
        True,
        "Serve Prometheus metrics at /metrics (requests by route and status, logins, sign-ups); in the bundle "
        "the page holds the updater's metrics too.",
    )
    metrics_allow: tuple[str, ...] = option(
        ("127.0.0.1", "::1"),
        "Client addresses or networks allowed to read /metrics (after trusted proxies are resolved).",
        check=_check_networks,
    )


@dataclass(frozen=True)
class UpdaterSection:
    """[updater]: the dyndns2 update API (ddserver-updater)."""

    listen: str = option("127.0.0.1:8081", "Address the updater listens on.", check=_check_listen)
    server: str = option(
        "granian",
        "Web server of ddserver-updater: granian (Rust HTTP, worker processes), gunicorn (worker processes, "
        "gthread) or waitress (one process, pure Python). granian answered most updates per second here; "
        "see docs/updater.md.",
        choices=("granian", "gunicorn", "waitress"),
    )
    workers: int = option(
        2,
        "Worker processes (granian, gunicorn), each with its own threads, database connections and group "
        "committer: about the cores the updater may use (one Python process uses one core at most).",
        minimum=1,
        maximum=64,
    )
    threads: int = option(
        16,
        "Worker threads of the web server, in each worker process; more threads per worker let more changing "
        "updates share one commit.",
        minimum=1,
        maximum=256,
    )
    min_interval: int = option(
        60,
        "Seconds that should pass between two changing updates of one host; a change sooner than that is "
        "applied but counts as a client fault. 0: never.",
        minimum=0,
    )
    nochg_interval: int = option(
        60,
        "An update that changes nothing, sooner than this many seconds after the host's previous update, "
        "counts as a client fault. 0: never.",
        minimum=0,
    )
    fault_limit: int = option(
        100,
        "Client faults (too frequent updates, bad requests) within fault_window after which a host is flagged "
        "for abuse: it leaves DNS and is answered 'abuse' until an admin clears it. 0: never flag.",
        minimum=0,
    )
    fault_window: int = option(3600, "Seconds over which client faults are counted.", minimum=10)
    auth_failure_window: int = option(
        900, "Seconds over which failed update logins are counted for the rate limits.", minimum=10
    )
    auth_failures_per_client: int = option(
        30,
        "Failed update logins from one client address (an IPv6 client: its /64) within auth_failure_window "
        "after which its further failures are answered 'abuse' and its weak secrets no longer checked; right "
        "server-made secrets and tokens are always served. 0: no limit.",
        minimum=0,
    )
    auth_failures_per_account: int = option(
        10,
        "Failed checks of one host's weak secret (a password imported from ddserver 0.2) within "
        "auth_failure_window after which it is checked only for the address of the host's last update. "
        "0: no limit.",
        minimum=0,
    )
    blocked_hosts: tuple[str, ...] = option(
        (),
        "Host names answered 'abuse' without touching the database, comma-separated; '*.example.org' "
        "blocks every name below example.org.",
    )
    blocked_agents: tuple[str, ...] = option(
        (), "Parts of User-Agent headers answered 'badagent', comma-separated (case-insensitive)."
    )
    status_refresh: int = option(
        300,
        "An update that changes nothing rewrites the host's last-update status (time, client, TLS) only when "
        "it is older than this many seconds, so repeated updates cost a read and no write.",
        minimum=0,
    )
    history_kept: int = option(
        20,
        "Updates kept per host for its page (time, client, TLS, answer, addresses): every 'good', a 'nochg' when "
        "it rewrites the status (status_refresh), and every update or bad request counted as a client fault; "
        "'ddserver prune' trims each host to this many. 0: none recorded.",
        minimum=0,
        maximum=1000,
    )
    auth_trail_kept: int = option(
        20,
        "Failed update logins kept per host for its page (time, client, TLS, reason; never the secret tried): "
        "each one the rate limits count (see auth_failures_per_client). 'ddserver prune' trims each host to "
        "this many. 0: none recorded.",
        minimum=0,
        maximum=1000,
    )
    batch_max: int = option(
        200,
        "Group commit: changing updates that arrive while the previous write is committing are written "
        "together, up to this many in one transaction (each answered only after it committed). "
        "1: every update in a transaction of its own.",
        minimum=1,
        maximum=1000,
    )
    batch_wait: float = option(
        0.005,
        "Group commit: seconds a transaction waits at most, before it is written, for the requests of its "
        "process that are under way and for as many updates as the previous one had (clients answered "
        "together come back together). 0: write what is waiting at once.",
        minimum=0.0,
        maximum=0.1,
    )
    host_cache: int = option(
        50000,
        "Hosts each updater process keeps in memory after a successful login (about 1 KB each), so that an "
        "update that changes nothing is answered without reading the database; entries follow the change "
        "feed, secret changes and rate limits (see docs/updater.md). 0: read the database for every update.",
        minimum=0,
    )
    host_cache_poll: float = option(
        0.2,
        "Seconds between two reads of the change feed by each updater process that keeps hosts in memory.",
        minimum=0.01,
        maximum=5.0,
    )
    metrics: bool = option(True, "Serve Prometheus metrics at /metrics.")
    metrics_allow: tuple[str, ...] = option(
        ("127.0.0.1", "::1"),
        "Client addresses or networks allowed to read /metrics (after trusted proxies are resolved).",
        check=_check_networks,
    )


@dataclass(frozen=True)
class RecursorSection:
    """[recursor]: the PowerDNS backend (ddserver-recursor)."""

    poll_interval: float = option(0.2, "Seconds between two reads of the change feed.", minimum=0.01, maximum=60.0)
    backend: str = option(
        "remote",
        "The PowerDNS backend this site's recursors serve: remote (--remote-socket, --remote-pipe) or pipe "
        "(--pipe, --pipe-socket). The pipe backend cannot serve DNSSEC, so 'ddserver zone dnssec' refuses to "
        "sign a zone when this is pipe.",
        choices=("remote", "pipe"),
    )
    purge: str = option(
        "socket",
        "How changed names are purged from PowerDNS's caches after each change: socket (the control "
        "socket, spoken directly), pdns_control (the command), api (the HTTP API), or none.",
        choices=("socket", "pdns_control", "api", "none"),
    )
    control_socket: str = option(
        "/run/pdns/pdns.controlsocket",
        "PowerDNS's control socket (socket-dir/pdns.controlsocket) for purge = socket or pdns_control.",
    )
    pdns_control: str = option("pdns_control", "The pdns_control program, for purge = pdns_control.")
    api_url: str = option("http://127.0.0.1:8081", "Base URL of PowerDNS's HTTP API, for purge = api.")
    api_key: str = option("", "PowerDNS's api-key, for purge = api.", secret=True)
    socket_mode: str = option(
        "0666",
        "Permissions (octal) of the --remote-socket socket; PowerDNS's user must be able to write to it.",
        check=lambda v: None if v.isdigit() and set(v) <= set("01234567") else "an octal mode such as 0660",
    )
    snapshot_dir: str = option(
        "",
        "Folder (private to the recursor's user) for the index snapshot that pipe-mode coprocesses start "
        "from, and that the socket daemon starts from (serving it, stale, while the database is unreachable). "
        "Empty: /var/lib/ddserver/recursor when the recursor's user can have it, else a private folder in "
        "the system's temp directory (which may not last across reboots).",
    )
    snapshot_interval: float = option(
        300.0,
        "Seconds between two snapshots written by the socket daemon (--remote-socket, --pipe-socket) while "
        "the data changes; it also writes one once loaded and one when it stops. 0: only those two.",
        minimum=0.0,
        maximum=86400.0,
    )
    coprocess_timeout: float = option(
        5.0,
        "Seconds a coprocess (--pipe, --remote-pipe) may spend on one answer before it exits, so that "
        "PowerDNS starts a new one. It stands in for PowerDNS's pipe-timeout, which makes every lookup dearer "
        "(etc/pdns/pdns-pipe.conf sets it to 0). 0: no limit; else at least 2 (a coprocess's first question "
        "may wait 1 s for the data).",
        check=lambda v: None if v == 0 or 2 <= v <= 3600 else "0 (no limit) or 2 to 3600 seconds",
    )
    allow_axfr_from: tuple[str, ...] = option(
        ("127.0.0.0/8", "::1"),
        "Networks that may transfer a zone without a transfer key unsigned (remote modes: served to PowerDNS "
        "as the zone's ALLOW-AXFR-FROM; set PowerDNS's allow-axfr-ips empty so that this decides). A zone "
        "with transfer keys goes only to requests signed with one of them. Empty: no unsigned transfers.",
        check=_check_networks,
    )
    key_changes: bool = option(
        False,
        "Whether PowerDNS's tools may change the DNSSEC keys of signed zones through the recursor (remote "
        "modes): pdnsutil add-zone-key, activate-zone-key, deactivate-zone-key, publish-zone-key, "
        "unpublish-zone-key, remove-zone-key and the HTTP API's cryptokeys then write to the database (private "
        "keys sealed with the data key; the recursor's database user needs write access). no: they are "
        "refused and 'ddserver zone key ...' does it. Domain metadata is never written (docs/dnssec.md).",
    )
    metrics: str = option(
        "",
        "HOST:PORT where Prometheus metrics are served (remote-socket mode). Empty: no metrics. "
        "--metrics overrides it.",
        check=lambda v: None if not v else _check_listen(v),
    )
    metrics_textfile_dir: str = option(
        "",
        "For pipe-mode coprocesses (--pipe, --remote-pipe), which have no port: the folder of node-exporter's "
        "textfile collector (such as /var/lib/prometheus/node-exporter), where each coprocess writes its "
        'metrics as ddserver-recursor-<pid>.prom (labelled process="<pid>"); PowerDNS\'s user must be able '
        "to write there. Empty: coprocesses write no metrics.",
    )
    metrics_textfile_interval: float = option(
        15.0,
        "Seconds between two writes of a coprocess's metrics file (metrics_textfile_dir).",
        minimum=0.1,
        maximum=3600.0,
    )


@dataclass(frozen=True)
class Rfc2136Section:
    """[rfc2136]: the worker that sends RFC 2136 updates to external nameservers (ddserver-rfc2136)."""

    poll_interval: float = option(0.2, "Seconds between two reads of the change feed.", minimum=0.01, maximum=60.0)
    timeout: float = option(
        5.0, "Seconds to wait for a nameserver's answer to one query or update.", minimum=0.1, maximum=120.0
    )
    batch_size: int = option(
        200, "Names per UPDATE message when many changes of one zone are pending.", minimum=1, maximum=1000
    )
    retry_min: float = option(
        1.0,
        "Seconds before the first retry of a zone whose nameserver failed; doubled after each failure.",
        minimum=0.1,
    )
    retry_max: float = option(300.0, "Longest wait between two retries of a failing zone.", minimum=1.0)
    lease_time: float = option(
        30.0,
        "Seconds a worker holds a zone: of several workers, one pushes a zone at a time, and another takes it "
        "over this long after the holder stopped renewing (the machines' clocks must agree, as with NTP).",
        minimum=2.0,
        maximum=3600.0,
    )
    metrics: str = option(
        "",
        "HOST:PORT where the worker serves Prometheus metrics (updates sent, failures, lag behind the change "
        "feed) at /metrics. Empty: no metrics.",
        check=lambda v: None if not v else _check_listen(v),
    )
    gap_timeout: float = option(
        10.0,
        "Seconds a change id missing from the feed is waited for before it counts as rolled back (ids may "
        "commit out of order; later changes are pushed meanwhile).",
        minimum=0.5,
        maximum=3600.0,
    )


@dataclass(frozen=True)
class RelaySection:
    """[relay]: forwarding hosts' address changes to third-party dyndns2 services (see docs/updater.md)."""

    enabled: bool = option(
        True,
        "Run the relay worker in each updater and bundle process: it sends pending relays after the update "
        "committed, off the request path. Several processes share the work through a lease per relay. "
        "Turn it off in updaters that must not reach the internet, as long as another process runs it.",
    )
    max_per_host: int = option(3, "Relays a host may have (0: relays are not offered).", minimum=0, maximum=20)
    workers: int = option(
        2,
        "Relays sent at once by one process: a third party that hangs holds one of them for at most timeout.",
        minimum=1,
        maximum=32,
    )
    poll_interval: float = option(
        1.0, "Seconds between two looks for pending relays when none is waiting.", minimum=0.05, maximum=60.0
    )
    timeout: float = option(
        15.0,
        "Seconds to wait for a third party to connect and answer before the try counts as failed.",
        minimum=0.5,
        maximum=120.0,
    )
    retry_min: float = option(
        60.0,
        "Seconds before the first retry of a failed relay (network error, timeout, HTTP error, 911); doubled "
        "after each failure in a row. After 911 or dnserr at least 30 minutes (within retry_max), as Dyn asks.",
        minimum=0.05,
        maximum=86400.0,
    )
    retry_max: float = option(
        3600.0, "Longest wait between two retries of a failing relay.", minimum=0.1, maximum=86400.0
    )


@dataclass(frozen=True)
class RetentionSection:
    """[retention]: how long personal data is kept; ``ddserver prune`` (a daily timer) deletes what is older."""

    audit_days: int = option(
        365,
        "Days that audit entries (admin, account and host actions, hosts flagged for abuse, with the client "
        "address they came from) are kept. 0: until the next prune.",
        minimum=0,
    )
    events_days: int = option(
        7,
        "Days that the facts the rate limits count (failed logins, sign-up and reset requests, with the client "
        "address) are kept. Never less than the longest window that counts them ([interface] login_window, "
        "the hour of mail_per_address): prune keeps those at least that long whatever is set here.",
        minimum=0,
    )
    unactivated_days: int = option(
        7,
        "Days after which an account whose e-mail address was never confirmed (a sign-up that was not "
        "activated) is deleted, with its name and address. Never less than [auth] token_lifetime. 0: never.",
        minimum=0,
    )


@dataclass(frozen=True)
class NotifySection:
    """[notify]: mail to host owners, sent by ``ddserver notify`` (a daily timer): stale hosts, hosts flagged
    for abuse, and the removal of stale hosts that nobody confirmed."""

    stale_after_days: int = option(
        0,
        "Days without an update (or a confirmation) after which a host's owner is warned by mail, once. "
        "0: no warnings.",
        minimum=0,
        maximum=36500,
    )
    remove_after_days: int = option(
        0,
        "Days after the warning after which a host still neither updated nor confirmed (with the link in the "
        "warning or the button on its page) is removed; its owner is told. 0: never removed. Needs "
        "stale_after_days.",
        minimum=0,
        maximum=36500,
    )
    abuse: bool = option(True, "Tell a host's owner by mail when the host is flagged for abuse, once per flag.")


@dataclass(frozen=True)
class Config:
    """The whole configuration, one attribute per INI section."""

    database: DatabaseSection = field(default_factory=DatabaseSection)
    auth: AuthSection = field(default_factory=AuthSection)
    dns: DnsSection = field(default_factory=DnsSection)
    zones: ZonesSection = field(default_factory=ZonesSection)
    signup: SignupSection = field(default_factory=SignupSection)
    mail: MailSection = field(default_factory=MailSection)
    captcha: CaptchaSection = field(default_factory=CaptchaSection)
    http: HttpSection = field(default_factory=HttpSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    interface: InterfaceSection = field(default_factory=InterfaceSection)
    updater: UpdaterSection = field(default_factory=UpdaterSection)
    recursor: RecursorSection = field(default_factory=RecursorSection)
    rfc2136: Rfc2136Section = field(default_factory=Rfc2136Section)
    relay: RelaySection = field(default_factory=RelaySection)
    retention: RetentionSection = field(default_factory=RetentionSection)
    notify: NotifySection = field(default_factory=NotifySection)
    #: The file the configuration was read from, if any.
    source: str | None = None

    def replace(self, section: str, **values: Any) -> Config:
        """Return a copy with some keys of one section changed (used by command-line flags and tests)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})

    @property
    def update_url(self) -> str:
        return (self.http.update_url or self.http.base_url).rstrip("/")

    def update_url_of(self, family: int) -> str:
        """The updater's public URL under its IPv4-only (4) or IPv6-only (6) name, or "" when not set."""
        return (self.http.update_url_ipv4 if family == 4 else self.http.update_url_ipv6).rstrip("/")

    def address_check_url(self, family: int) -> str:
        """Where a browser asks for its address of one family: [interface] ipv4_check_url / ipv6_check_url,
        else the updater's ``/api/myip`` under its name of that family, else ""."""
        own = self.interface.ipv4_check_url if family == 4 else self.interface.ipv6_check_url
        updater = self.update_url_of(family)
        return own or (updater + "/api/myip" if updater else "")


def sections() -> dict[str, type]:
    """Map each section name to its dataclass, in file order."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if f.name != "source"}


def _convert(section: str, key: str, raw: str, kind: Any, meta: Mapping[str, Any]) -> Any:
    shown = "(secret)" if meta.get("secret") else repr(raw)

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"config: [{section}] {key} = {shown}: expected {expected}")

    text = raw.strip()
    value: Any
    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "yes", "true", "on"):
            value = True
        elif lowered in ("0", "no", "false", "off"):
            value = False
        else:
            raise fail("yes or no")
    elif kind is int:
        try:
            value = int(text)
        except ValueError:
            raise fail("a whole number")
    elif kind is float:
        try:
            value = float(text)
        except ValueError:
            raise fail("a number")
    elif typing.get_origin(kind) is tuple:
        value = tuple(part for part in text.replace(",", " ").split() if part)
    else:
        value = text
    if meta.get("choices") and value not in meta["choices"]:
        raise fail("one of " + ", ".join(meta["choices"]))
    low, high = meta.get("minimum"), meta.get("maximum")
    if low is not None and value < low:
        raise fail(f"at least {low:g}")
    if high is not None and value > high:
        raise fail(f"at most {high:g}")
    if meta.get("check"):
        expected = meta["check"](value)
        if expected:
            raise fail(expected)
    return value


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the configuration once: the file, then ``DDSERVER_<SECTION>_<KEY>`` from the environment.

    The file is ``path``, else ``$DDSERVER_CONFIG``, else ``/etc/ddserver/ddserver.conf`` if it exists,
    else none (built-in defaults).

    :raises ConfigError: naming the key, the value and what was expected.
    """
    env = os.environ if env is None else env
    explicit = path if path is not None else env.get("DDSERVER_CONFIG") or None
    source: Path | None = None
    if explicit is not None:
        source = Path(explicit)
        if not source.is_file():
            raise ConfigError(f"config: {source}: no such file")
    elif DEFAULT_PATH.is_file():
        source = DEFAULT_PATH

    parser = configparser.ConfigParser(interpolation=None, default_section="__defaults__")
    if source is not None:
        try:
            text = source.read_text(encoding="utf-8")
            parser.read_string(text, source=str(source))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config: {source}: cannot be read ({exc.__class__.__name__}: {exc})")
        except configparser.Error as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"config: {source}: not a valid INI file: {first}")

    known = sections()
    values: dict[str, dict[str, Any]] = {name: {} for name in known}
    for name in parser.sections():
        if name not in known:
            raise ConfigError(f"config: {source}: unknown section [{name}]; known: {', '.join(known)}")
        fields = {f.name: f for f in dataclasses.fields(known[name])}
        hints = typing.get_type_hints(known[name])
        for key, raw in parser.items(name):
            if key not in fields:
                raise ConfigError(f"config: {source}: unknown key '{key}' in [{name}]")
            values[name][key] = _convert(name, key, raw, hints[key], fields[key].metadata)

    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or var == "DDSERVER_CONFIG":
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        name, _, key = rest.partition("_")
        if name not in known:
            continue
        fields = {f.name: f for f in dataclasses.fields(known[name])}
        if key not in fields:
            raise ConfigError(f"config: environment variable {var}: [{name}] has no key '{key}'")
        hints = typing.get_type_hints(known[name])
        values[name][key] = _convert(name, key, raw, hints[key], fields[key].metadata)

    built = {name: cls(**values[name]) for name, cls in known.items()}
    return Config(**built, source=str(source) if source else None)


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc,operator]


def _format_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def sample_file() -> str:
    """The example configuration file: every key commented out at its default, with its documentation."""
    import textwrap

    lines = [
        "# ddserver configuration. Every key is shown with its default; uncomment to change it.",
        "# Any key can also be set from the environment as DDSERVER_<SECTION>_<KEY>,",
        "# for example DDSERVER_DATABASE_URL. Generated by: python -m ddserver.config --sample",
    ]
    for name, cls in sections().items():
        lines += ["", f"[{name}]"]
        for f in dataclasses.fields(cls):
            lines += ["#"] if lines[-1] != f"[{name}]" else []
            lines += ["# " + line for line in textwrap.wrap(f.metadata["doc"], 100)]
            if f.metadata.get("choices"):
                lines.append("# One of: " + ", ".join(f.metadata["choices"]) + ".")
            default = _default_of(f)
            lines.append(f"#{f.name} = {_format_default(default)}".rstrip())
    return "\n".join(lines) + "\n"


def markdown_reference() -> str:
    """The configuration reference for docs/, generated from the same declarations."""
    out = [
        "# Configuration reference",
        "",
        "ddserver reads one INI file: `--config FILE`, else `$DDSERVER_CONFIG`, else "
        "`/etc/ddserver/ddserver.conf`, else built-in defaults. Any key can be overridden from the "
        "environment as `DDSERVER_<SECTION>_<KEY>` (for example `DDSERVER_DATABASE_URL`). A bad value stops "
        "the program with one line naming the key, the value and what was expected.",
        "",
        "This page is generated from `ddserver/config.py` (`python -m ddserver.config --markdown`); "
        "`etc/ddserver/ddserver.conf` is generated from the same declarations, and a test keeps both current.",
    ]
    for name, cls in sections().items():
        intro = (cls.__doc__ or "").split(":", 1)[-1].strip()
        out += ["", f"## [{name}]", "", intro[:1].upper() + intro[1:], ""]
        out += ["| key | default | meaning |", "|---|---|---|"]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = _default_of(f)
            doc = f.metadata["doc"]
            if f.metadata.get("choices"):
                doc += " One of: " + ", ".join(f"`{c}`" for c in f.metadata["choices"]) + "."
            kind = getattr(hints[f.name], "__name__", "list")
            kind = "list" if typing.get_origin(hints[f.name]) is tuple else kind
            shown = _format_default(default)
            out.append(
                f"| `{f.name}` ({kind}) | `{shown}` | {doc} |" if shown else f"| `{f.name}` ({kind}) | | {doc} |"
            )
    return "\n".join(out) + "\n"


def _main(argv: list[str]) -> int:
    if argv == ["--sample"]:
        sys.stdout.write(sample_file())
    elif argv == ["--markdown"]:
        sys.stdout.write(markdown_reference())
    else:
        sys.stderr.write("usage: python -m ddserver.config --sample | --markdown\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
