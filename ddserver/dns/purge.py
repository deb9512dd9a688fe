"""Purging names from a PowerDNS server's packet and query caches: the control socket, pdns_control, or the
HTTP API. The only module of ddserver.dns that does I/O."""

from __future__ import annotations

import enum
import logging
import os
import socket
import subprocess
import urllib.parse
from collections.abc import Iterable

logger = logging.getLogger(__name__)

#: Names per control socket command (PowerDNS reads one line per connection).
CHUNK = 100


class PurgeMethod(enum.StrEnum):
    """How the recursor purges PowerDNS's caches."""

    NONE = "none"
    SOCKET = "socket"
    PDNS_CONTROL = "pdns_control"
    API = "api"


class PurgeError(Exception):
    """The cache purge failed."""


def purge_commands(exact: Iterable[str], subtree: Iterable[str]) -> list[str]:
    """Control socket lines for the names: ``name`` purges that name, ``name$`` it and all below it."""
    words = sorted({n for n in exact if n} - set(subtree)) + sorted(f"{n}$" for n in set(subtree) if n)
    return ["PURGE " + " ".join(words[i : i + CHUNK]) for i in range(0, len(words), CHUNK)]


def control_socket(path: str, command: str, timeout: float = 2.0) -> str:
    """Send one command line to a PowerDNS control socket and return its reply.

    :raises PurgeError: when the socket cannot be reached or does not answer in time.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(command.encode("ascii", "replace") + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError as exc:
        raise PurgeError(f"control socket {path}: {exc.strerror or exc}") from None
    return b"".join(chunks).decode("utf-8", "replace")


class Purger:
    """Purges stale names through the configured method.

    :param socket_path: the control socket (``<socket-dir>/pdns.controlsocket``) for ``socket`` and
        ``pdns_control``.
    :param api_url: base URL of the PowerDNS HTTP API (``http://127.0.0.1:8081``) for ``api``.
    """

    def __init__(
        self,
        method: PurgeMethod,
        *,
        socket_path: str = "",
        api_url: str = "",
        api_key: str = "",
        pdns_control: str = "pdns_control",
        timeout: float = 2.0,
    ) -> None:
        self.method = method
        self.socket_path = socket_path
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.pdns_control = pdns_control
        self.timeout = timeout
        self.purged = 0
        self.failures = 0

    def purge(self, exact: Iterable[str], subtree: Iterable[str], rediscover: bool = False) -> None:
        """Purge the names; ``subtree`` names go with everything below them.

        :param rediscover: zones were added or deleted: refresh PowerDNS's zone cache first.
        :raises PurgeError: when PowerDNS could not be told.
        """
        exact, subtree = set(exact), set(subtree)
        commands = (["REDISCOVER"] if rediscover else []) + purge_commands(exact, subtree)
        try:
            if self.method is PurgeMethod.SOCKET:
                for command in commands:
                    control_socket(self.socket_path, command, self.timeout)
            elif self.method is PurgeMethod.PDNS_CONTROL:
                for command in commands:
                    self._pdns_control(command.lower().split())
            elif self.method is PurgeMethod.API:
                # The API flushes a name with its whole subtree; flushing a zone's apex for its SOA after
                # each host change would empty the zone's cache, so exact names go only when they are
                # zone-level changes (the caller puts those in ``subtree``).
                for name in sorted(subtree):
                    self._api_flush(name)
            else:
                return
        except PurgeError:
            self.failures += 1
            raise
        self.purged += len(exact | subtree)

    def _pdns_control(self, words: list[str]) -> None:
        argv = [self.pdns_control]
        if self.socket_path:
            argv.append(f"--socket-dir={os.path.dirname(self.socket_path)}")
        try:
            result = subprocess.run(argv + words, capture_output=True, timeout=self.timeout * 5, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PurgeError(f"pdns_control: {exc}") from None
        if result.returncode != 0:
            raise PurgeError(f"pdns_control: {result.stderr.decode(errors='replace').strip()[:200]}")

    def _api_flush(self, name: str) -> None:
        import http.client  # only this method needs it: pipe coprocesses start faster without

        parts = urllib.parse.urlsplit(self.api_url)
        path = parts.path.rstrip("/") + "/api/v1/servers/localhost/cache/flush?domain="
        path += urllib.parse.quote(name.rstrip(".") + ".", safe="")
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 8081, timeout=self.timeout)
        try:
            conn.request("PUT", path, headers={"X-API-Key": self.api_key})
            response = conn.getresponse()
            body = response.read()
        except OSError as exc:
            raise PurgeError(f"API {self.api_url}: {exc}") from None
        finally:
            conn.close()
        if response.status != 200:
            raise PurgeError(f"API {self.api_url}: HTTP {response.status} {body[:200].decode(errors='replace')}")
