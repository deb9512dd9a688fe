"""``ddserver run`` after a crash: its PowerDNS and recursor end with it (nothing left running or defunct), the
next run serves DNS, and a run whose DNS port is taken says why and exits non-zero."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from ddserver.errors import DDServerError
from ddserver.recursor import private_pdns
from tests import support
from tests.integration.interface.test_quickstart_serving import _processes_under

ZONE = "dyn.example.test"


def _soa_answers(port: int) -> bool:
    answer = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=2)
    return answer.rcode() == dns.rcode.NOERROR and bool(answer.answer)


def _state(pid: int) -> str | None:
    """The process's state letter (Z: defunct), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DDSERVER_")}


def _start(tmp_path: Path, data: Path, http_port: int, dns_port: int, log: str) -> support.Process:
    argv = [
        support.console_script("ddserver"),
        "run",
        "--data-dir",
        data,
        "--listen",
        f"127.0.0.1:{http_port}",
        "--dns-port",
        str(dns_port),
    ]
    return support.Process(argv, log=tmp_path / log, cwd=tmp_path, env=_env())


def _kill_all_under(folder: Path) -> None:
    for pid, _ in _processes_under(folder):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_leaves_nothing_and_the_next_run_serves(tmp_path: Path) -> None:
    support.require_binary("pdns_server", "/usr/sbin/pdns_server")
    data = tmp_path / "var"
    http_port, dns_port = support.free_port(), support.free_dns_port()
    first = _start(tmp_path, data, http_port, dns_port, "first.log")
    second = None
    try:
        first.wait_port("127.0.0.1", http_port, timeout=90)
        first.wait_for(lambda: _soa_answers(dns_port), timeout=30, what="DNS from the first run")
        children = [int((data / "pdns" / name).read_text().split()[0]) for name in private_pdns.PID_FILES]
        assert all(_state(pid) not in (None, "Z") for pid in children)
        os.kill(first.pid, signal.SIGKILL)  # the parent alone, as a crash would end it
        first.proc.wait(10)
        # Gone, not defunct: the process that adopted them (PID 1) reaps them.
        support.wait_until(lambda: all(_state(pid) is None for pid in children), timeout=30, what="the children to end")
        support.wait_until(lambda: not _processes_under(data), timeout=30, what="no process of the first run to remain")
        second = _start(tmp_path, data, http_port, dns_port, "second.log")
        second.wait_port("127.0.0.1", http_port, timeout=90)
        second.wait_for(lambda: _soa_answers(dns_port), timeout=30, what="DNS from the second run")
        log = second.log()
        assert "PowerDNS answers" in log and "Traceback" not in log
        assert second.stop(timeout=30) in (0, -signal.SIGTERM)
        support.wait_until(lambda: not _processes_under(data), timeout=20, what="the second run's servers to end")
    finally:
        first.stop()
        if second is not None:
            second.stop()
        _kill_all_under(data)


def test_a_taken_dns_port_stops_the_run_with_the_reason(tmp_path: Path) -> None:
    support.require_binary("pdns_server", "/usr/sbin/pdns_server")
    data = tmp_path / "var"
    http_port, dns_port = support.free_port(), support.free_dns_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", dns_port))
        argv = [
            support.console_script("ddserver"),
            "run",
            "--data-dir",
            str(data),
            "--listen",
            f"127.0.0.1:{http_port}",
            "--dns-port",
            str(dns_port),
        ]
        try:
            result = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        finally:
            _kill_all_under(data)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"cannot start PowerDNS: 127.0.0.1 port {dns_port} is taken" in result.stderr
    assert "PowerDNS answers" not in result.stdout
    assert "Traceback" not in result.stderr
    assert not _processes_under(data)


def test_pdns_failing_to_start_shows_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When PowerDNS itself fails (here: the port is taken after the check), the error carries the end of
    its log, and nothing is left running."""
    support.require_binary("pdns_server", "/usr/sbin/pdns_server")
    url = support.new_database_url("sqlite", tmp_path)
    support.create_database(url)
    config = support.make_config(url, tmp_path)
    monkeypatch.setattr(private_pdns, "_port_taken", lambda address, port: False)
    dns_port = support.free_dns_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", dns_port))
        with pytest.raises(DDServerError) as caught:
            private_pdns.start_private_pdns(config, None, dns_port, tmp_path / "data", timeout=60)
    message = caught.value.message
    assert message.startswith("pdns_server exited") and str(tmp_path / "data" / "pdns" / "pdns.log") in message
    assert "Unable to bind" in message or "Address already in use" in message, message
    assert not _processes_under(tmp_path / "data")
    assert not any((tmp_path / "data" / "pdns" / name).exists() for name in private_pdns.PID_FILES)
