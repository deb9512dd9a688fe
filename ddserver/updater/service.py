"""What the updater does for one request: authenticate, decide each hostname's answer with the protocol core,
and apply it through ``store.updates``. No HTTP here: the Bottle shell builds an ``UpdateRequest``."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ddserver import secrets
from ddserver.config import Config
from ddserver.db import Database
from ddserver.errors import DatabaseError, NotFound
from ddserver.store import history, records, tokens
from ddserver.store import updates as store
from ddserver.store.common import now
from ddserver.updater import protocol
from ddserver.updater.committer import Committer
from ddserver.updater.hostcache import HostCache
from ddserver.updater.protocol import Answer, Code, Credentials, Hostname, IPAddress, Target

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpdateRequest:
    """An update request as the shell received it."""

    params: Mapping[str, str]
    authorization: str | None = None
    client: IPAddress | None = None
    tls: bool = False
    user_agent: str | None = None

    @property
    def client_text(self) -> str | None:
        return None if self.client is None else str(self.client)


class Kind(enum.Enum):
    """How a request authenticated."""

    #: Host FQDN and that host's secret: that host only.
    HOST = "host"
    #: User name and one of the account's update tokens: the hosts and scopes of the token.
    ACCOUNT_TOKEN = "account-token"
    #: User name and one host's secret (ddserver 0.2): that host only.
    ACCOUNT_HOST_SECRET = "account-host-secret"


@dataclass(frozen=True)
class Principal:
    """Who is asking, and which hosts they may change."""

    kind: Kind
    user_id: int
    host_ids: frozenset[int] = field(default_factory=frozenset)
    #: The host the credentials name (HOST, ACCOUNT_HOST_SECRET): the default hostname, and the host faults
    #: of bad requests count against.
    host: store.HostState | None = None
    #: What the token allows (ACCOUNT_TOKEN).
    grant: tokens.Grant | None = None

    def covers(self, host: store.HostState, scope: tokens.Scope) -> bool:
        """Whether the credentials may do ``scope`` to ``host`` (host secrets may do everything to theirs)."""
        if self.kind is Kind.ACCOUNT_TOKEN:
            grant = self.grant
            return (
                host.user_id == self.user_id
                and grant is not None
                and grant.allows(scope)
                and grant.covers(host.id, host.zone_id)
            )
        return host.id in self.host_ids


class StaleSecret(Exception):
    """The host's secret was replaced between the read that authenticated an update and its write."""


@dataclass
class _Checks:
    """What checking one request's credentials did, for the answer to a failure and what it counts."""

    #: A secret or token was checked (or the login named nothing): the failure counts against the client.
    checked: bool = False
    #: A weak secret was not checked, its limit being reached: the answer is ``abuse``.
    held_back: bool = False
    #: Hosts whose weak secret was checked and did not match.
    failed_weak: list[store.HostState] = field(default_factory=list)
    #: Hosts whose secret (weak or not) was checked and did not match.
    failed: list[store.HostState] = field(default_factory=list)
    #: Hosts whose weak secret was not checked for being past its limit, with the failures counted.
    held: list[tuple[store.HostState, int]] = field(default_factory=list)


def _network(address: IPAddress) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network one client is counted as: its address, or for IPv6 its /64 (a subscriber holds a /64 or
    more, and picks addresses in it at will)."""
    return ipaddress.ip_network(f"{address}/{64 if address.version == 6 else 32}", strict=False)


def _client_key(request: UpdateRequest) -> str | None:
    return None if request.client is None else f"client:{_network(request.client)}"


def _weak_key(name: str) -> str:
    return f"weak:{name}"[:191]


class Refused(Exception):
    """The whole request gets one code on every line (bad credentials, rate limit, database down)."""

    def __init__(self, code: Code) -> None:
        super().__init__(code.value)
        self.code = code


def _hostname_parameter(params: Mapping[str, str]) -> str:
    # "hostname" is dyndns2; "host" and "domain" are what some router URL templates call it.
    for key in ("hostname", "host", "domain"):
        value = params.get(key, "").strip()
        if value:
            return value
    return ""


class Updater:
    """The dyndns2 service over one database; safe to share between threads."""

    def __init__(self, config: Config, db: Database, on_batch: Callable[[int], None] | None = None) -> None:
        """:param on_batch: called with the size of each group commit (for the metrics)."""
        self.config = config
        self.settings = config.updater
        self.db = db
        self.pepper = config.auth.pepper
        self.committer = (
            Committer(db, max_batch=self.settings.batch_max, gather=self.settings.batch_wait, on_batch=on_batch)
            if self.settings.batch_max > 1
            else None
        )
        self.cache = (
            HostCache(db, size=self.settings.host_cache, poll_interval=self.settings.host_cache_poll)
            if self.settings.host_cache
            else None
        )

    def close(self) -> None:
        """Write the updates that are waiting and stop the committer and cache threads."""
        if self.committer is not None:
            self.committer.close()
        if self.cache is not None:
            self.cache.stop()

    # -- authentication -----------------------------------------------------------------------------

    # Server-made secrets (130 bits) and account tokens cannot be guessed: they are checked on every request,
    # whatever the counters say, so nobody else's failures can refuse them. The counters bound what failing
    # costs (a client over its limit is answered abuse and no longer counted) and guard the secrets that can
    # be guessed: an imported ddserver 0.2 password is checked at most auth_failures_per_account times per
    # window, after which only the address of the host's last update may still try it.

    def _client_over(self, request: UpdateRequest, failures: Mapping[str, int]) -> bool:
        limit, key = self.settings.auth_failures_per_client, _client_key(request)
        return bool(limit and key is not None and failures.get(key, 0) >= limit)

    def _load(self, request: UpdateRequest, creds: Credentials, names: list[str]) -> store.Lookup:
        key = _client_key(request)
        try:
            return store.lookup(
                self.db,
                names,
                creds.login,
                secrets.token_hash(creds.secret),
                [key] if key is not None else [],
                self.settings.auth_failure_window,
                account_hosts=not names,
            )
        except DatabaseError as exc:
            logger.error("update from %s: %s", request.client_text, exc)
            raise Refused(Code.SERVER_ERROR)

    def _may_check_weak(
        self, request: UpdateRequest, found: store.Lookup, host: store.HostState, checks: _Checks
    ) -> bool:
        """Whether a weak (person-chosen) secret of ``host`` may be checked for this request."""
        if self._client_over(request, found.failures):
            return False
        limit = self.settings.auth_failures_per_account
        if not limit:
            return True
        try:
            hits, last_client = store.weak_secret_state(
                self.db, host.id, _weak_key(host.name), self.settings.auth_failure_window
            )
        except DatabaseError as exc:
            logger.error("update from %s: %s", request.client_text, exc)
            raise Refused(Code.SERVER_ERROR)
        if hits < limit:
            return True
        # Past its limit, the secret is still checked for the client that last updated the host (its router,
        # until its address changes): strangers cannot lock it out from there.
        try:
            known = last_client is not None and _network(ipaddress.ip_address(last_client))
        except ValueError:
            known = False
        if known and request.client is not None and _network(request.client) == known:
            return True
        checks.held.append((host, hits))
        return False

    def _check_secret(
        self, request: UpdateRequest, found: store.Lookup, host: store.HostState, secret: str, checks: _Checks
    ) -> bool:
        weak = secrets.is_weak_hash(host.secret_hash)
        if weak and not self._may_check_weak(request, found, host, checks):
            checks.held_back = True
            return False
        checks.checked = True
        check = secrets.verify_host_secret(secret, host.secret_hash, self.pepper)
        if not check.ok:
            checks.failed.append(host)
            if weak:
                checks.failed_weak.append(host)
        if check.ok and check.needs_rehash:
            # A person chose it: it stays marked weak once re-hashed.
            new_hash = secrets.hash_host_secret(secret, self.pepper, weak=True)
            try:
                replaced = store.rehash_secret(self.db, host.id, host.secret_hash, new_hash)
            except DatabaseError as exc:
                logger.warning("could not re-hash the legacy secret of %s: %s", host.name, exc)
            else:
                if replaced:
                    logger.info("re-hashed the legacy secret of %s", host.name)
                    # The write that follows checks the hash it was read with against the row's.
                    found.hosts[host.name] = dataclasses.replace(host, secret_hash=new_hash)
        return check.ok

    def authenticate(
        self, request: UpdateRequest, creds: Credentials, found: store.Lookup, names: Sequence[str] = ()
    ) -> Principal:
        """Decide who the credentials belong to. Right credentials are never refused for failures counted
        before (a weak secret past its limit excepted, see above).

        A failure that is counted is also recorded against the hosts it was against (``store.history``): the
        host the login names, or the hosts named in the request whose secrets were tried with a user name.

        :raises Refused: ``badauth`` for wrong credentials (counted), ``abuse`` when the client is past its
            limit or a weak secret was not checked.
        """
        checks = _Checks()
        principal = self._principal(request, creds, found, checks)
        if principal is not None:
            return principal
        over = self._client_over(request, found.failures)
        keys = [_weak_key(h.name) for h in checks.failed_weak]
        client_key = _client_key(request)
        if client_key is not None and checks.checked and not over:
            keys.append(client_key)
        kept = self.settings.auth_trail_kept
        # A weak secret held back costs no write, but is recorded (and counted on under its key, already past
        # its limit) up to ``kept`` times per window and host: a guessing owner sees it, a flood stays cheap.
        limit = self.settings.auth_failures_per_account
        named = {creds.login, *names}
        held = [host for host, hits in checks.held if kept and hits < limit + kept and host.name in named]
        keys += [_weak_key(h.name) for h in held]
        if keys:
            trail = (
                store.Trail(
                    wrong=[h.id for h in checks.failed if h.name in named],
                    held=[h.id for h in held],
                    client=request.client_text,
                    tls=request.tls,
                    keep=kept,
                    client_key=client_key,
                    client_limit=self.settings.auth_failures_per_client,
                )
                if kept
                else None
            )
            try:
                store.count_failure(self.db, keys, self.settings.auth_failure_window, trail)
            except DatabaseError as exc:
                logger.error("update from %s: %s", request.client_text, exc)
        code = Code.ABUSE if over or checks.held_back else Code.BADAUTH
        logger.info("%s for %r from %s", code.value, creds.login, request.client_text)
        raise Refused(code)

    def _principal(
        self, request: UpdateRequest, creds: Credentials, found: store.Lookup, checks: _Checks
    ) -> Principal | None:
        host = found.hosts.get(creds.login)
        if host is not None:
            if self._check_secret(request, found, host, creds.secret, checks):
                host = found.hosts[host.name]
                return Principal(Kind.HOST, host.user_id, frozenset({host.id}), host)
            return None
        account = found.account
        # The token was checked in the lookup; a login that names nothing counts as a failure too.
        checks.checked = True
        if account is None:
            return None
        if account.grant is not None:
            self._touch(request, account.grant)
            return Principal(Kind.ACCOUNT_TOKEN, account.id, grant=account.grant)
        # ddserver 0.2: the user name with the secret of one of the hosts named (or, with none named,
        # of any of the user's hosts).
        matched = [
            found.hosts[h.name]
            for h in list(found.hosts.values())
            if h.user_id == account.id and self._check_secret(request, found, h, creds.secret, checks)
        ]
        if not matched:
            return None
        return Principal(Kind.ACCOUNT_HOST_SECRET, account.id, frozenset(h.id for h in matched), matched[0])

    def _touch(self, request: UpdateRequest, grant: tokens.Grant) -> None:
        """Record a token's use (at most once a minute per token: ``tokens.touch``)."""
        try:
            tokens.touch(self.db, grant)
        except DatabaseError as exc:
            # The update goes on: a "last used" a minute old is better than a 911.
            logger.warning("could not record the use of a token from %s: %s", request.client_text, exc)

    # -- update -------------------------------------------------------------------------------------

    def _prepare(self, request: UpdateRequest, hostnames: tuple[Hostname, ...]) -> Credentials:
        """The checks that need no database: agent, credentials, number of hostnames, blocked names."""
        if protocol.agent_blocked(request.user_agent, self.settings.blocked_agents):
            raise Refused(Code.BADAGENT)
        creds = protocol.credentials(request.authorization, request.params)
        if creds is None:
            raise Refused(Code.BADAUTH)
        if len(hostnames) > protocol.MAX_HOSTNAMES:
            raise Refused(Code.NUMHOST)
        blocked = self.settings.blocked_hosts
        if blocked:
            if protocol.is_blocked(creds.login, blocked):
                raise Refused(Code.ABUSE)
            if hostnames and all(h.name and protocol.is_blocked(h.name, blocked) for h in hostnames):
                raise Refused(Code.ABUSE)
        return creds

    def _cached(
        self, request: UpdateRequest, creds: Credentials, names: list[str]
    ) -> tuple[store.Lookup, Principal] | None:
        """The host and principal of a host login from the cache, when it can answer for them: the host is
        there and the secret, one the server made, matches its hash (failures counted do not matter for such a
        secret; weak ones go the database's way, which guards them)."""
        cache = self.cache
        if cache is None or any(name != creds.login for name in names):
            return None
        host = cache.get(creds.login)
        if host is None or secrets.is_weak_hash(host.secret_hash):
            return None
        check = secrets.verify_host_secret(creds.secret, host.secret_hash, self.pepper)
        if not check.ok or check.needs_rehash:
            return None
        return store.Lookup({host.name: host}, None, {}), Principal(Kind.HOST, host.user_id, frozenset({host.id}), host)

    def update(self, request: UpdateRequest, *, delete: bool = False) -> list[Answer]:
        """Answer a ``/nic/update`` (or, with ``delete``, a ``/nic/delete``) request: one answer per hostname."""
        committer = self.committer
        if committer is not None:
            committer.arriving()  # the batch being gathered waits for this request
        try:
            return self._update(request, delete, use_cache=True)
        except StaleSecret:
            # Authenticated from the cache with a secret replaced meanwhile: nothing was written; again from
            # the database, which answers badauth.
            return self._update(request, delete, use_cache=False)
        finally:
            if committer is not None:
                committer.leaving()

    def _update(self, request: UpdateRequest, delete: bool, use_cache: bool) -> list[Answer]:
        hostnames = protocol.parse_hostnames(_hostname_parameter(request.params))
        lines = max(1, len(hostnames))
        cached = False
        try:
            creds = self._prepare(request, hostnames)
            names = [
                h.name for h in hostnames if h.name and not protocol.is_blocked(h.name, self.settings.blocked_hosts)
            ]
            hit = self._cached(request, creds, names) if use_cache else None
            if hit is not None:
                found, principal = hit
                cached = True
            else:
                mark = self.cache.mark() if self.cache is not None else 0
                found = self._load(request, creds, names)
                principal = self.authenticate(request, creds, found, names)
                if self.cache is not None and principal.kind is Kind.HOST and principal.host is not None:
                    self.cache.put(principal.host, mark)
        except Refused as refused:
            # numhost is one line whatever the number of names.
            return [Answer(refused.code)] * (1 if refused.code is Code.NUMHOST else lines)
        if not hostnames:
            if principal.host is None:
                return [Answer(Code.NOTFQDN)]
            hostnames = (Hostname(principal.host.name, principal.host.name),)
        try:
            parser = protocol.parse_delete_target if delete else protocol.parse_target
            target: Target | None = parser(request.params, request.client)
        except protocol.BadAddress:
            target = None
        answers = []
        for hostname in hostnames:
            try:
                answers.append(self._one(request, principal, found, hostname, target, delete))
            except StaleSecret:
                if cached:
                    raise  # one hostname only: nothing else was written
                answers.append(Answer(Code.BADAUTH))
        return answers

    def _one(
        self,
        request: UpdateRequest,
        principal: Principal,
        found: store.Lookup,
        hostname: Hostname,
        target: Target | None,
        delete: bool = False,
    ) -> Answer:
        if hostname.name is None:
            return self._fault(request, principal.host, Code.NOTFQDN)
        if protocol.is_blocked(hostname.name, self.settings.blocked_hosts):
            return Answer(Code.ABUSE)
        host = found.hosts.get(hostname.name)
        if host is None or not principal.covers(host, tokens.Scope.UPDATE):
            return self._fault(request, principal.host, Code.NOHOST)
        if not host.in_dns:
            return Answer(Code.ABUSE)
        if target is None:
            return self._fault(request, host, Code.BADAGENT)
        outcome = protocol.decide(target, host.ipv4, host.ipv6, host.ipv6_prefix)
        # Whether the zone allows wildcards is checked where it is written; a wildcard it refuses is ignored.
        wildcard = None if delete else protocol.parse_wildcard(request.params)
        stamp = now()
        recorded = False
        try:
            if (
                outcome.changed
                or (wildcard is not None and wildcard != host.wildcard)
                or stamp - (host.last_update_at or 0) >= self.settings.status_refresh
            ):
                # The fault it will count as goes with its history row (written with the update).
                expected = self._fault_of(outcome, stamp, host)
                applied = self._write(
                    store.Update(
                        host,
                        target.ipv4,
                        target.ipv6,
                        target.set_ipv4,
                        target.set_ipv6,
                        client=request.client_text,
                        tls=request.tls,
                        result=(Code.GOOD if outcome.changed else Code.NOCHG).value,
                        refresh_status_after=self.settings.status_refresh,
                        check_secret=principal.kind is not Kind.ACCOUNT_TOKEN,
                        wildcard=wildcard,
                        history=self.settings.history_kept > 0,
                        fault=None if expected is None else expected.code,
                        ipv6_prefix=target.ipv6_prefix,
                    )
                )
                if applied.stale_secret:
                    raise StaleSecret(host.name)
                if applied.refused:
                    return Answer(Code.ABUSE)
                outcome = protocol.Outcome(applied.ipv4, applied.ipv6, applied.changed)
                recorded = applied.recorded
        except NotFound:
            return Answer(Code.NOHOST)
        except DatabaseError as exc:
            logger.error("update of %s from %s: %s", host.name, request.client_text, exc)
            return Answer(Code.SERVER_ERROR)
        answer = outcome.answer()
        fault = self._fault_of(outcome, stamp, host)
        if fault is not None:
            # An update answered without a write (or whose write was not recorded) enters the history with
            # the fault's count, in its transaction.
            row = None if recorded else self._history_row(request, host, answer.code, outcome, fault.code)
            self._count_fault(request, host, fault.value, row)
        return answer

    def _fault_of(self, outcome: protocol.Outcome, stamp: int, host: store.HostState) -> protocol.Fault | None:
        settings = self.settings
        return protocol.fault_of(
            outcome, stamp, host.last_update_at, host.address_changed_at, settings.min_interval, settings.nochg_interval
        )

    def _history_row(
        self,
        request: UpdateRequest,
        host: store.HostState,
        code: Code,
        outcome: protocol.Outcome | None,
        fault: str,
    ) -> tuple[Any, ...] | None:
        """A row of the host's history for an update answered with a fault, or None if none are kept."""
        if not self.settings.history_kept:
            return None
        return history.update_row(
            host.id,
            now(),
            client=request.client_text,
            tls=request.tls,
            result=code.value,
            ipv4=None if outcome is None else outcome.ipv4,
            ipv6=None if outcome is None else outcome.ipv6,
            fault=fault,
        )

    def _write(self, update: store.Update) -> store.Applied:
        """Write an update: with the others that are waiting (group commit), or in a transaction of its own."""
        cache = self.cache
        if cache is None:
            return self._apply(update)
        # The host as read is about to change: forgotten before the write (reads under way are not kept), then
        # kept as the write left it when the feed id of its change is known, else forgotten again.
        name = update.host.name
        mark = cache.writing(name)
        try:
            applied = self._apply(update)
        except BaseException:
            cache.written(name, mark)
            raise
        if applied.change_id is not None and update.check_secret:
            host = dataclasses.replace(
                update.host,
                ipv4=applied.ipv4,
                ipv6=applied.ipv6,
                address_changed_at=applied.address_changed_at,
                last_update_at=applied.last_update_at,
                wildcard=applied.wildcard,
                ipv6_prefix=applied.ipv6_prefix,
            )
            cache.written(name, mark, host, applied.change_id)
        else:
            cache.written(name, mark)
        return applied

    def _apply(self, update: store.Update) -> store.Applied:
        if self.committer is not None:
            return self.committer.apply(update)
        written = store.apply_many(self.db, [update])[0]
        if isinstance(written, NotFound):
            raise written
        return written

    def _fault(self, request: UpdateRequest, host: store.HostState | None, code: Code) -> Answer:
        """Answer a bad request, counting it against the host it came for (when known), in whose history it
        enters."""
        if host is not None:
            self._count_fault(
                request, host, code.value, self._history_row(request, host, code, None, history.BAD_REQUEST)
            )
        return Answer(code)

    def _count_fault(
        self, request: UpdateRequest, host: store.HostState, reason: str, row: tuple[Any, ...] | None = None
    ) -> None:
        try:
            flagged = store.add_fault(
                self.db,
                host,
                limit=self.settings.fault_limit,
                window=self.settings.fault_window,
                reason=reason,
                client=request.client_text,
                history_row=row,
            )
        except DatabaseError as exc:
            # The update itself is done; losing one fault count is better than answering 911 for it.
            logger.warning("could not count a fault of %s: %s", host.name, exc)
            return
        if flagged:
            logger.warning("flagged %s for abuse (%s) after a request from %s", host.name, reason, request.client_text)

    # -- ACME DNS-01 --------------------------------------------------------------------------------

    def acme(self, request: UpdateRequest, *, clear: bool) -> Answer:
        """Set (or clear) a TXT record at ``_acme-challenge.<host>`` with the host's credentials.

        ``txt`` carries the challenge; clearing without ``txt`` removes every challenge of the host.
        """
        params = request.params
        value = params.get("txt", params.get("value", "")).strip()
        try:
            hostnames = protocol.parse_hostnames(protocol.strip_acme_label(_hostname_parameter(params)))
            creds = self._prepare(request, hostnames)
            if len(hostnames) > 1:
                raise Refused(Code.NUMHOST)
            names = [h.name for h in hostnames if h.name]
            found = self._load(request, creds, names)
            principal = self.authenticate(request, creds, found, names)
        except Refused as refused:
            return Answer(refused.code)
        if hostnames:
            hostname = hostnames[0]
        elif principal.host is not None:
            hostname = Hostname(principal.host.name, principal.host.name)
        else:
            return Answer(Code.NOTFQDN)
        if hostname.name is None:
            return Answer(Code.NOTFQDN)
        host = found.hosts.get(hostname.name)
        if host is None or not principal.covers(host, tokens.Scope.TXT):
            return Answer(Code.NOHOST)
        if not host.in_dns:
            return Answer(Code.ABUSE)
        if (value or not clear) and not protocol.valid_txt(value):
            return Answer(Code.BADAGENT)
        name = f"{protocol.ACME_LABEL}.{host.name}"
        try:
            existing = [r for r in records.for_host(self.db, host.id) if r.name == name and r.type == "TXT"]
            if clear:
                if not records.delete(self.db, host.id, name=name, rtype="TXT", content=value or None):
                    return Answer(Code.NOCHG)
                return Answer(Code.GOOD)
            if any(r.content == value for r in existing):
                return Answer(Code.NOCHG)
            if len(existing) >= 10:
                # Challenges are cleared after use; ten pending ones mean a hook that never cleans up.
                return Answer(Code.ABUSE)
            records.add(self.db, host.id, name, "TXT", value, ttl=60)
            return Answer(Code.GOOD)
        except NotFound:
            return Answer(Code.NOHOST)
        except DatabaseError as exc:
            logger.error("ACME record of %s from %s: %s", host.name, request.client_text, exc)
            return Answer(Code.SERVER_ERROR)
