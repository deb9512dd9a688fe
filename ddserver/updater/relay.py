"""The relay worker: threads in each updater (and bundle) process that send hosts' address changes to
third-party dyndns2 services after the update committed, never on the request path.

A relay is pending when the transaction that changed its host's addresses bumped its generation
(``store/relays.py``). A thread takes a pending relay that is due with a lease on its row (so that of several
updater processes one sends it), sends the host's addresses as they are then (the latest only), and files the
answer: done, a retry after a growing wait, or stopped until the owner edits the relay (``badauth``...).
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from ddserver import relay, sealing
from ddserver.config import Config
from ddserver.db import Database
from ddserver.errors import DDServerError
from ddserver.store import relays as store

logger = logging.getLogger(__name__)
#: The most read of an answer: a dyndns2 answer is one short line per host.
_MAX_ANSWER = 4096


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: it would carry the credentials elsewhere; it ends as an HTTP error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _describe(exc: BaseException) -> str:
    """A network error in a few words (never the request: its header holds the secret)."""
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "server name not found"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror).lower()
    return type(reason).__name__ if not str(reason) else str(reason)[:200]


class RelayWorker:
    """``config.relay.workers`` threads sending pending relays until ``close``."""

    def __init__(self, config: Config, db: Database) -> None:
        self.settings = config.relay
        self.db = db
        self.sealer = sealing.load(config)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._opener = urllib.request.build_opener(_NoRedirect())
        #: The last pass failed on the database (its warning is logged once per outage).
        self._failing = False

    def start(self) -> RelayWorker:
        for index in range(self.settings.workers):
            thread = threading.Thread(target=self._loop, name=f"ddserver-relay-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("relay worker: %d threads", self.settings.workers)
        return self

    def close(self) -> None:
        """Stop the threads (a try under way ends within ``[relay] timeout``) and give the leases up."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.settings.timeout + 5)
        self._threads.clear()
        try:
            store.release_all(self.db, self.holder)
        except DDServerError as exc:  # a database that is gone at shutdown: the leases run out by themselves
            logger.warning("relay worker: could not give up its leases: %s", exc.message)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except DDServerError as exc:  # the database is away: one line per outage, then try again
                if not self._failing:
                    logger.warning("relay worker: %s; trying again", exc.message)
                self._failing = True
                worked = False
            except Exception:  # a bug must not end the thread either
                logger.exception("relay worker: pass failed")
                worked = False
            else:
                if self._failing:
                    logger.info("relay worker: the database answers again")
                self._failing = False
            if not worked:
                self._stop.wait(self.settings.poll_interval)

    def run_once(self) -> bool:
        """Claim one due relay and send it; False when none was due."""
        for relay_id in store.due(self.db, self.settings.workers * 2):
            job = store.claim(self.db, relay_id, self.holder, self.settings.timeout * 2 + 30)
            if job is not None:
                self.send(job)
                return True
        return False

    def send(self, job: store.Job) -> None:
        """Send one claimed relay and file the answer."""
        myip = relay.addresses(job.ipv4, job.ipv6, relay.Family(job.family))
        if not myip:
            store.finish(self.db, job, self.holder, done=True)  # no address to send: nothing to relay
            return
        try:
            secret = self.sealer.unseal(job.sealed_secret, store.secret_context(job.host_id))
        except sealing.SealingError as exc:
            outcome = relay.failure(f"the secret cannot be opened here: {exc.message}")
        else:
            outcome = self.fetch(relay.request(job.url, job.remote_name, job.username, secret, myip))
        wait = relay.backoff(job.attempts + 1, outcome.code, self.settings.retry_min, self.settings.retry_max)
        verdict = outcome.verdict
        store.finish(
            self.db,
            job,
            self.holder,
            done=verdict is relay.Verdict.DONE,
            stop=verdict is relay.Verdict.STOP,
            retry_in=wait,
            result=outcome.code,
            detail=outcome.detail,
            sent=myip,
        )
        server = urllib.parse.urlsplit(job.url).hostname
        if verdict is relay.Verdict.DONE:
            logger.info("relay %d: %s at %s: %s %s", job.id, job.remote_name, server, outcome.code, myip)
        elif verdict is relay.Verdict.STOP:
            logger.warning(
                "relay %d: %s at %s: %s %s; stopped until edited",
                job.id, job.remote_name, server, outcome.code, outcome.detail,
            )  # fmt: skip
        else:
            logger.info(
                "relay %d: %s at %s: %s %s; next try in %.0f s",
                job.id, job.remote_name, server, outcome.code, outcome.detail, wait,
            )  # fmt: skip

    def fetch(self, request: relay.Request) -> relay.Outcome:
        """Send the GET and read the answer; a network error or timeout is a failure to retry."""
        http_request = urllib.request.Request(request.url, headers=request.headers)
        # The timeout bounds each wait on the socket; the deadline bounds a body that trickles in.
        deadline = time.monotonic() + self.settings.timeout
        try:
            with self._opener.open(http_request, timeout=self.settings.timeout) as reply:
                body = b""
                while len(body) < _MAX_ANSWER and time.monotonic() < deadline:
                    chunk = reply.read1(_MAX_ANSWER - len(body))
                    if not chunk:
                        break
                    body += chunk
                return relay.outcome(reply.status, body)
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(_MAX_ANSWER)
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                exc.close()
            if 300 <= exc.code < 400:
                return relay.redirected(exc.code, exc.headers.get("Location", ""))
            return relay.outcome(exc.code, body)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            return relay.failure(_describe(exc))


def start(config: Config, db: Database) -> RelayWorker | None:
    """Start the relay worker of this process, unless ``[relay] enabled`` is off or relays are not offered."""
    if not config.relay.enabled or not config.relay.max_per_host:
        return None
    return RelayWorker(config, db).start()
