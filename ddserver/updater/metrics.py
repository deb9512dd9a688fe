"""Prometheus metrics of the updater: answers by code, a latency histogram and the group commits, in the text
format; with several worker processes, each shares its counters through a folder so any of them answers for all."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ddserver.updater.protocol import Code

#: Upper bounds (seconds) of the latency histogram's buckets.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Seconds between two writes of a worker's counters to the shared folder.
SHARE_INTERVAL = 1.0


def _empty() -> dict[str, Any]:
    return {
        "answers": {code.value: 0 for code in Code},
        "requests": {},
        "buckets": [0] * len(BUCKETS),
        "count": 0,
        "sum": 0.0,
        "batches": 0,
        "batched": 0,
    }


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    for key in ("answers", "requests"):
        for name, value in part.get(key, {}).items():
            total[key][name] = total[key].get(name, 0) + value
    total["buckets"] = [a + b for a, b in zip(total["buckets"], part.get("buckets", []), strict=False)]
    for key in ("count", "sum", "batches", "batched"):
        total[key] += part.get(key, 0)


class Metrics:
    """Thread-safe counters of one process.

    :param shared: a folder that every worker process of one updater writes its counters to (about once a
        second, as ``<pid>.json``), so that ``/metrics``, whichever worker answers it, shows the sum of all of
        them. Files of workers that have ended stay and keep counting, so the totals never go down.
    """

    def __init__(self, shared: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._state = _empty()
        self._shared = Path(shared) if shared else None
        self._dirty = threading.Event()
        if self._shared is not None:
            threading.Thread(target=self._share, name="ddserver-metrics", daemon=True).start()

    def observe(self, endpoint: str, codes: Iterable[Code], seconds: float) -> None:
        """Count one request to ``endpoint``, the code of each answer line, and its latency."""
        with self._lock:
            state = self._state
            state["requests"][endpoint] = state["requests"].get(endpoint, 0) + 1
            for code in codes:
                state["answers"][code.value] += 1
            state["count"] += 1
            state["sum"] += seconds
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    state["buckets"][index] += 1
                    break
        if not self._dirty.is_set():
            self._dirty.set()

    def observe_batch(self, size: int) -> None:
        """Count one group commit of ``size`` updates."""
        with self._lock:
            self._state["batches"] += 1
            self._state["batched"] += size
        if not self._dirty.is_set():
            self._dirty.set()

    def answers(self, code: Code) -> int:
        with self._lock:
            return int(self._state["answers"][code.value])

    def _own(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._state))  # type: ignore[no-any-return]

    def _save(self) -> None:
        assert self._shared is not None
        path = self._shared / f"{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._own()))
        os.replace(temporary, path)

    def _share(self) -> None:
        # A thread of the worker (started after the fork): writes the counters when they have changed.
        while True:
            self._dirty.wait()
            self._dirty.clear()
            try:
                self._save()
            except OSError:
                pass  # the folder is gone: the updater is stopping
            time.sleep(SHARE_INTERVAL)

    def _total(self) -> dict[str, Any]:
        total = self._own()
        if self._shared is None:
            return total
        mine = f"{os.getpid()}.json"
        for path in sorted(self._shared.glob("*.json")):
            if path.name == mine:
                continue
            try:
                _add(total, json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # being replaced right now: the next scrape has it
        return total

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format (of every worker, with a shared folder)."""
        state = self._total()
        lines = [
            "# HELP ddserver_updater_answers_total Answer lines sent, by dyndns2 code.",
            "# TYPE ddserver_updater_answers_total counter",
        ]
        lines += [f'ddserver_updater_answers_total{{code="{code}"}} {n}' for code, n in state["answers"].items()]
        lines += [
            "# HELP ddserver_updater_requests_total Requests served, by endpoint.",
            "# TYPE ddserver_updater_requests_total counter",
        ]
        lines += [
            f'ddserver_updater_requests_total{{endpoint="{name}"}} {n}' for name, n in sorted(state["requests"].items())
        ]
        lines += [
            "# HELP ddserver_updater_request_seconds Time to answer a request.",
            "# TYPE ddserver_updater_request_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(BUCKETS, state["buckets"], strict=True):
            cumulative += n
            lines.append(f'ddserver_updater_request_seconds_bucket{{le="{bound:g}"}} {cumulative}')
        lines.append(f'ddserver_updater_request_seconds_bucket{{le="+Inf"}} {state["count"]}')
        lines.append(f"ddserver_updater_request_seconds_sum {state['sum']:.6f}")
        lines.append(f"ddserver_updater_request_seconds_count {state['count']}")
        lines += [
            "# HELP ddserver_updater_commits_total Write transactions of the group committer.",
            "# TYPE ddserver_updater_commits_total counter",
            f"ddserver_updater_commits_total {state['batches']}",
            "# HELP ddserver_updater_committed_updates_total Updates written by those transactions.",
            "# TYPE ddserver_updater_committed_updates_total counter",
            f"ddserver_updater_committed_updates_total {state['batched']}",
        ]
        return "\n".join(lines) + "\n"
