"""``ddserver run`` serving for real: the bundle over HTTP and a private PowerDNS, driven the way the quick
start tells a newcomer to (``ddserver host add``, an update through /nic/update, a DNS query), then stopped
with nothing left running."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from tests import support

ZONE = "dyn.example.test"


def _processes_under(folder: Path) -> list[tuple[int, str]]:
    """Processes whose command line names ``folder`` (the quick start's pdns_server and recursor do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in argv if a)
        if str(folder) in line:
            found.append((int(entry.name), line))
    return found


def _query(port: int, name: str, rtype: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", port=port, timeout=2)
    return sorted(r.to_text() for rrset in answer.answer for r in rrset)


def _query_a(port: int, name: str) -> list[str]:
    answer = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)
    return [r.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for r in rrset]


def test_ddserver_run_serves_updates_and_dns_then_stops_everything(tmp_path: Path) -> None:
    support.require_binary("pdns_server", "/usr/sbin/pdns_server")
    data = tmp_path / "var"
    http_port, dns_port = support.free_port(), support.free_dns_port()
    # Only the quick start's own files: no DDSERVER_* setting of the test run leaks into it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDSERVER_")}
    ddserver = support.console_script("ddserver")
    argv = [ddserver, "run", "--data-dir", data, "--listen", f"127.0.0.1:{http_port}", "--dns-port", str(dns_port)]
    process = support.Process(argv, log=tmp_path / "run.log", cwd=tmp_path, env=env)
    try:
        process.wait_port("127.0.0.1", http_port, timeout=90)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=10) as page:
            assert page.status == 200 and "Dynamic DNS" in page.read().decode()
        conf = data / "ddserver.conf"
        added = subprocess.run(
            [ddserver, "--config", conf, "host", "add", "admin", f"home.{ZONE}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        secret = added.stdout.strip().splitlines()[-1]
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/nic/update?hostname=home.{ZONE}&myip=192.0.2.44",
            headers={"Authorization": "Basic " + base64.b64encode(f"home.{ZONE}:{secret}".encode()).decode()},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.read().decode().strip() == "good 192.0.2.44"
        support.wait_until(
            lambda: _query_a(dns_port, f"home.{ZONE}") == ["192.0.2.44"], timeout=20, what="the address in DNS"
        )
        # Signing the demo zone as docs/dnssec.md says: the private PowerDNS serves its keys at once (the
        # recursor opens them with the data key the quick start wrote).
        signed = subprocess.run(
            [ddserver, "--config", conf, "zone", "dnssec", ZONE, "on"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert signed.returncode == 0 and f"{ZONE}. IN DS " in signed.stdout, signed.stdout + signed.stderr
        support.wait_until(lambda: _query(dns_port, ZONE, "DNSKEY"), timeout=20, what="the zone's DNSKEY")
        started = _processes_under(data)
        assert any("pdns_server" in line for _, line in started), started
        assert any("ddserver.recursor" in line for _, line in started), started
        # A clean stop (SIGTERM, as systemd or Ctrl-C would give) ends what the quick start started.
        assert process.stop(timeout=30) in (0, -signal.SIGTERM)
        support.wait_until(lambda: not _processes_under(data), timeout=20, what="pdns_server and recursor to end")
    finally:
        process.stop()
        for pid, _ in _processes_under(data):  # never leave a server behind, even when the test failed
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    log = (tmp_path / "run.log").read_text()
    assert "Traceback" not in log
