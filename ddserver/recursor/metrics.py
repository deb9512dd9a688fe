"""Prometheus metrics of the recursor: queries by type and result, reloads, change lag, last change id.

Written in the text exposition format by hand (no client library), served by a small HTTP thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ddserver import exposition

logger = logging.getLogger(__name__)


class QueryCounter:
    """Counts answered questions by (qtype, result); called on the hot path, so it is one dict update."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    @staticmethod
    def key(qtype: str, records: int) -> tuple[str, str]:
        """The counter a lookup adds to; ``records`` is -1 for a name outside every served zone, 0 for no
        data, else the number of records."""
        return (qtype, "foreign" if records < 0 else ("nodata" if records == 0 else "answer"))

    def __call__(self, qtype: str, records: int) -> None:
        key = self.key(qtype, records)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1


def render(counter: QueryCounter, gauges: dict[str, tuple[str, str, float]]) -> str:
    """The exposition text: the query counter, then ``gauges`` (name -> (type, help, value))."""
    lines = [
        "# HELP ddserver_recursor_queries_total Questions answered, by type and result.",
        "# TYPE ddserver_recursor_queries_total counter",
    ]
    for (qtype, result), count in sorted(dict(counter.counts).items()):
        qtype = "".join(c for c in qtype if c.isalnum())[:16] or "unknown"
        lines.append(f'ddserver_recursor_queries_total{{qtype="{qtype}",result="{result}"}} {count}')
    for name, (kind, text, value) in gauges.items():
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}")
    return "\n".join(lines) + "\n"


def serve(host: str, port: int, body: Callable[[], str]) -> Any:
    """Serve ``GET /metrics`` on a daemon thread; returns the server (``shutdown()`` stops it)."""
    return exposition.serve(host, port, body)
