"""Configuration: an INI file plus ``DDSERVER_<SECTION>_<KEY>`` overrides, loaded once into typed sections.

Every key is declared here with its default and its documentation; the example file
``etc/ddserver/ddserver.conf`` and ``docs/configuration.md`` are generated from these declarations.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import os
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        "used by the start page to show both addresses. Empty: only the address the page was loaded from.",
    )
    ipv6_check_url: str = option("", "The same over IPv6 only (such as https://ipv6.example.org/myip).")
    reverse_dns: bool = option(True, "Show the reverse DNS name of the visitor's address on the start page.")


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
    metrics: str = option(
        "",
        "HOST:PORT where Prometheus metrics are served (remote-socket mode). Empty: no metrics. "
        "--metrics overrides it.",
        check=lambda v: None if not v else _check_listen(v),
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
    gap_timeout: float = option(
        10.0,
        "Seconds a change id missing from the feed is waited for before it counts as rolled back (ids may "
        "commit out of order; later changes are pushed meanwhile).",
        minimum=0.5,
        maximum=3600.0,
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
class Config:
    """The whole configuration, one attribute per INI section."""

    database: DatabaseSection = field(default_factory=DatabaseSection)
    auth: AuthSection = field(default_factory=AuthSection)
    dns: DnsSection = field(default_factory=DnsSection)
    signup: SignupSection = field(default_factory=SignupSection)
    mail: MailSection = field(default_factory=MailSection)
    captcha: CaptchaSection = field(default_factory=CaptchaSection)
    http: HttpSection = field(default_factory=HttpSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    interface: InterfaceSection = field(default_factory=InterfaceSection)
    updater: UpdaterSection = field(default_factory=UpdaterSection)
    recursor: RecursorSection = field(default_factory=RecursorSection)
    rfc2136: Rfc2136Section = field(default_factory=Rfc2136Section)
    retention: RetentionSection = field(default_factory=RetentionSection)
    #: The file the configuration was read from, if any.
    source: str | None = None

    def replace(self, section: str, **values: Any) -> Config:
        """Return a copy with some keys of one section changed (used by command-line flags and tests)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})

    @property
    def update_url(self) -> str:
        return (self.http.update_url or self.http.base_url).rstrip("/")


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
