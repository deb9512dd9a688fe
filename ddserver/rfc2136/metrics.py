"""Prometheus metrics of the RFC 2136 worker: updates sent, names pushed, failures, and how far each zone is
behind the change feed; in the text exposition format, served by ``ddserver.exposition.serve``."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping


class WorkerMetrics:
    """Counters and gauges of one worker, per zone; thread-safe (the metrics thread reads them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.updates: dict[str, int] = {}
        self.names: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        #: Zone -> commit time (epoch) of its oldest change not yet pushed; absent when it is in step.
        self.pending_since: dict[str, float] = {}
        self.passes = 0
        self.feed_edge = 0
        self.database_up = 1

    def sent(self, zone: str, names: int) -> None:
        """One UPDATE message with ``names`` names was accepted by the zone's server."""
        with self._lock:
            self.updates[zone] = self.updates.get(zone, 0) + 1
            self.names[zone] = self.names.get(zone, 0) + names

    def failed(self, zone: str) -> None:
        """An attempt for the zone failed (server unreachable, refused, TSIG error...)."""
        with self._lock:
            self.failures[zone] = self.failures.get(zone, 0) + 1

    def pending(self, zone: str, since: float | None) -> None:
        """The zone has changes not pushed since ``since`` (epoch), or none (None)."""
        with self._lock:
            if since is None:
                self.pending_since.pop(zone, None)
            elif zone not in self.pending_since or since < self.pending_since[zone]:
                self.pending_since[zone] = since

    def pass_done(self, edge: int | None, database_up: bool = True) -> None:
        with self._lock:
            self.passes += 1
            if edge:
                self.feed_edge = max(self.feed_edge, edge)
            self.database_up = int(database_up)

    def render(self, now: float | None = None) -> str:
        """The exposition text."""
        now = time.time() if now is None else now
        with self._lock:
            updates, names, failures = dict(self.updates), dict(self.names), dict(self.failures)
            pending = dict(self.pending_since)
            passes, edge, up = self.passes, self.feed_edge, self.database_up
        lines: list[str] = []

        def family(name: str, kind: str, text: str, values: Mapping[str, float]) -> None:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            for zone, value in sorted(values.items()):
                lines.append(
                    f'{name}{{zone="{zone}"}} {value:g}'
                    if isinstance(value, float)
                    else f'{name}{{zone="{zone}"}} {value}'
                )

        family("ddserver_rfc2136_updates_total", "counter", "UPDATE messages the zone's server accepted.", updates)
        family("ddserver_rfc2136_names_pushed_total", "counter", "Names sent in those messages.", names)
        family("ddserver_rfc2136_failures_total", "counter", "Failed attempts to bring a zone in step.", failures)
        lag = {zone: round(max(0.0, now - since), 3) for zone, since in pending.items()}
        lag.update({zone: 0.0 for zone in set(updates) | set(failures) if zone not in lag})
        family(
            "ddserver_rfc2136_lag_seconds",
            "gauge",
            "Age of the zone's oldest change not yet at its server (0: in step).",
            lag,
        )
        lines += [
            "# HELP ddserver_rfc2136_passes_total Passes over the zones this worker holds.",
            "# TYPE ddserver_rfc2136_passes_total counter",
            f"ddserver_rfc2136_passes_total {passes}",
            "# HELP ddserver_rfc2136_feed_position Id of the newest change of the feed the worker has read.",
            "# TYPE ddserver_rfc2136_feed_position gauge",
            f"ddserver_rfc2136_feed_position {edge}",
            "# HELP ddserver_rfc2136_database_up 1 when the last pass could read the database.",
            "# TYPE ddserver_rfc2136_database_up gauge",
            f"ddserver_rfc2136_database_up {up}",
        ]
        return "\n".join(lines) + "\n"
