"""Prometheus metrics of the web interface: requests by route and status, logins and sign-ups, request time;
in the text exposition format, as the updater's and the recursor's."""

from __future__ import annotations

import threading

#: Upper bounds (seconds) of the request time histogram's buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: The route label of a request no route took (a 404): never the path, which anyone chooses.
UNROUTED = "(none)"


class InterfaceMetrics:
    """Thread-safe counters of one interface process (its threads share them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = {}
        self.logins: dict[str, int] = {"ok": 0, "failed": 0}
        self.signups = 0
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.sum = 0.0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request: its method, the route that took it (its rule, such as ``/hosts/<host_id:int>``,
        or ``UNROUTED``), the status it was answered with, and how long it took."""
        key = (method if method in ("GET", "POST", "HEAD") else "other", route, str(status))
        with self._lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            self.count += 1
            self.sum += seconds
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[index] += 1
                    break

    def login(self, ok: bool) -> None:
        """Count a login: ``ok`` when the password (and second factor) were right, else failed."""
        with self._lock:
            self.logins["ok" if ok else "failed"] += 1

    def signup(self) -> None:
        """Count a sign-up that made an account (waiting for its activation)."""
        with self._lock:
            self.signups += 1

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format."""
        with self._lock:
            requests = sorted(self.requests.items())
            logins = dict(self.logins)
            signups, buckets, count, total = self.signups, list(self.buckets), self.count, self.sum
        lines = [
            "# HELP ddserver_interface_requests_total HTTP requests answered, by method, route and status.",
            "# TYPE ddserver_interface_requests_total counter",
        ]
        for (method, route, status), n in requests:
            label = route.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(
                f'ddserver_interface_requests_total{{method="{method}",route="{label}",status="{status}"}} {n}'
            )
        lines += [
            "# HELP ddserver_interface_request_seconds Time to answer a request.",
            "# TYPE ddserver_interface_request_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(BUCKETS, buckets, strict=True):
            cumulative += n
            lines.append(f'ddserver_interface_request_seconds_bucket{{le="{bound:g}"}} {cumulative}')
        lines.append(f'ddserver_interface_request_seconds_bucket{{le="+Inf"}} {count}')
        lines.append(f"ddserver_interface_request_seconds_sum {total:.6f}")
        lines.append(f"ddserver_interface_request_seconds_count {count}")
        lines += [
            "# HELP ddserver_interface_logins_total Logins, by result (a wrong password or second factor: failed).",
            "# TYPE ddserver_interface_logins_total counter",
        ]
        lines += [f'ddserver_interface_logins_total{{result="{name}"}} {n}' for name, n in logins.items()]
        lines += [
            "# HELP ddserver_interface_signups_total Sign-ups that made an account.",
            "# TYPE ddserver_interface_signups_total counter",
            f"ddserver_interface_signups_total {signups}",
        ]
        return "\n".join(lines) + "\n"
