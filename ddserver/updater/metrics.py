"""Prometheus metrics of one updater process: answers by code and a latency histogram, in the text format."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ddserver.updater.protocol import Code

#: Upper bounds (seconds) of the latency histogram's buckets.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Thread-safe counters; each process has its own, and Prometheus sums them over the targets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers = {code: 0 for code in Code}
        self._requests: dict[str, int] = {}
        self._buckets = [0] * len(BUCKETS)
        self._count = 0
        self._sum = 0.0
        self._batches = 0
        self._batched = 0

    def observe(self, endpoint: str, codes: Iterable[Code], seconds: float) -> None:
        """Count one request to ``endpoint``, the code of each answer line, and its latency."""
        with self._lock:
            self._requests[endpoint] = self._requests.get(endpoint, 0) + 1
            for code in codes:
                self._answers[code] += 1
            self._count += 1
            self._sum += seconds
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self._buckets[index] += 1
                    break

    def observe_batch(self, size: int) -> None:
        """Count one group commit of ``size`` updates."""
        with self._lock:
            self._batches += 1
            self._batched += size

    def answers(self, code: Code) -> int:
        with self._lock:
            return self._answers[code]

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format."""
        with self._lock:
            answers = dict(self._answers)
            requests = dict(self._requests)
            buckets = list(self._buckets)
            count, total = self._count, self._sum
            batches, batched = self._batches, self._batched
        lines = [
            "# HELP ddserver_updater_answers_total Answer lines sent, by dyndns2 code.",
            "# TYPE ddserver_updater_answers_total counter",
        ]
        lines += [f'ddserver_updater_answers_total{{code="{code.value}"}} {n}' for code, n in answers.items()]
        lines += [
            "# HELP ddserver_updater_requests_total Requests served, by endpoint.",
            "# TYPE ddserver_updater_requests_total counter",
        ]
        lines += [f'ddserver_updater_requests_total{{endpoint="{name}"}} {n}' for name, n in sorted(requests.items())]
        lines += [
            "# HELP ddserver_updater_request_seconds Time to answer a request.",
            "# TYPE ddserver_updater_request_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(BUCKETS, buckets, strict=True):
            cumulative += n
            lines.append(f'ddserver_updater_request_seconds_bucket{{le="{bound:g}"}} {cumulative}')
        lines.append(f'ddserver_updater_request_seconds_bucket{{le="+Inf"}} {count}')
        lines.append(f"ddserver_updater_request_seconds_sum {total:.6f}")
        lines.append(f"ddserver_updater_request_seconds_count {count}")
        lines += [
            "# HELP ddserver_updater_commits_total Write transactions of the group committer.",
            "# TYPE ddserver_updater_commits_total counter",
            f"ddserver_updater_commits_total {batches}",
            "# HELP ddserver_updater_committed_updates_total Updates written by those transactions.",
            "# TYPE ddserver_updater_committed_updates_total counter",
            f"ddserver_updater_committed_updates_total {batched}",
        ]
        return "\n".join(lines) + "\n"
