"""Real clients against a real ``ddserver-updater`` process: ddclient, inadyn, curl, wget, router-style URLs.

Each update must land in the database.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ddserver.db import Database
from ddserver.store import hosts, tokens
from tests import support
from tests.updater_support import ZONE, Site, make_site, write_updater_config

HOME = f"home.{ZONE}"
OFFICE = f"office.{ZONE}"


@dataclass
class Server:
    url: str
    port: int
    site: Site
    db: Database
    process: support.Process


@pytest.fixture
def server(db: Database, db_url: str, tmp_path: Path) -> Iterator[Server]:
    site = make_site(db)
    port = support.free_port()
    config = write_updater_config(tmp_path / "ddserver.conf", db_url, port)
    process = support.Process(
        [support.console_script("ddserver-updater"), "--config", str(config)], log=tmp_path / "updater.log"
    )
    try:
        process.wait_port("127.0.0.1", port)
        yield Server(f"http://127.0.0.1:{port}", port, site, db, process)
    finally:
        process.stop()


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def addresses(db: Database, name: str) -> tuple[str | None, str | None]:
    host = hosts.get(db, name)
    return host.ipv4, host.ipv6


def write_ddclient_config(path: Path, server: Server, login: str, secret: str, names: str, ip: str) -> Path:
    path.write_text(
        "daemon=0\nsyslog=no\nssl=no\n"
        f"usev4=ipv4, ipv4={ip}\n"
        "protocol=dyndns2\n"
        f"server=127.0.0.1:{server.port}\n"
        f"login={login}\npassword='{secret}'\n{names}\n"
    )
    path.chmod(0o600)
    return path


def ddclient(config: Path, cache: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    binary = support.require_binary("ddclient")
    # ddclient 3.10: one run in the foreground, no daemon, own cache file.
    return run([binary, "-foreground", "-file", str(config), "-cache", str(cache), "-daemon=0", "-verbose"], tmp_path)


def test_ddclient(server: Server, tmp_path: Path) -> None:
    secret = server.site.secrets[HOME]
    config = write_ddclient_config(tmp_path / "ddclient.conf", server, HOME, secret, HOME, "198.51.100.20")
    result = ddclient(config, tmp_path / "cache", tmp_path)
    assert "good: IP address set to 198.51.100.20" in result.stdout + result.stderr, result.stdout + result.stderr
    assert addresses(server.db, HOME) == ("198.51.100.20", None)
    assert "system=dyndns&hostname=home.dyn.example.org&myip=198.51.100.20" in result.stdout + result.stderr


def test_ddclient_account_token_several_hosts(server: Server, tmp_path: Path) -> None:
    config = write_ddclient_config(
        tmp_path / "ddclient.conf", server, "alice", server.site.token, f"{HOME},{OFFICE}", "198.51.100.22"
    )
    result = ddclient(config, tmp_path / "cache", tmp_path)
    output = result.stdout + result.stderr
    assert output.count("good: IP address set to 198.51.100.22") == 2, output
    assert addresses(server.db, HOME)[0] == addresses(server.db, OFFICE)[0] == "198.51.100.22"


def test_ddclient_scoped_token_and_nohost(server: Server, tmp_path: Path) -> None:
    """A token for one host: ddclient updates it, and reports the other as nohost (not as a login failure)."""
    token, _ = tokens.create_grant(server.db, server.site.alice.id, "router", [tokens.Scope.UPDATE],
                                   host_ids=[server.site.home.id])  # fmt: skip
    config = write_ddclient_config(
        tmp_path / "ddclient.conf", server, "alice", token, f"{HOME},{OFFICE}", "198.51.100.24"
    )
    result = ddclient(config, tmp_path / "cache", tmp_path)
    output = result.stdout + result.stderr
    assert output.count("good: IP address set to 198.51.100.24") == 1, output
    assert "nohost" in output and "authorization failed" not in output, output
    assert addresses(server.db, HOME)[0] == "198.51.100.24" and addresses(server.db, OFFICE)[0] is None


def test_ddclient_bad_secret(server: Server, tmp_path: Path) -> None:
    config = write_ddclient_config(tmp_path / "ddclient.conf", server, HOME, "wrong", HOME, "198.51.100.23")
    result = ddclient(config, tmp_path / "cache", tmp_path)
    assert "authorization failed" in result.stdout + result.stderr
    assert addresses(server.db, HOME) == (None, None)


def test_inadyn(server: Server, tmp_path: Path) -> None:
    binary = support.require_binary("inadyn")
    secret = server.site.secrets[HOME]
    config = tmp_path / "inadyn.conf"
    # The custom provider learns the address from the updater's /nic/ip (127.0.0.1 here, so the check
    # that the address is public is off).
    config.write_text(
        "period = 300\nverify-address = false\n"
        "custom ddserver {\n"
        "    ssl = false\n"
        f"    username = {HOME}\n"
        f"    password = {secret}\n"
        f"    ddns-server = 127.0.0.1:{server.port}\n"
        '    ddns-path = "/nic/update?hostname=%h&myip=%i"\n'
        f"    checkip-server = 127.0.0.1:{server.port}\n"
        "    checkip-path = /nic/ip\n"
        "    checkip-ssl = false\n"
        f"    hostname = {HOME}\n"
        "}\n"
    )
    cache = tmp_path / "inadyn-cache"
    cache.mkdir()
    argv = [binary, "--once", "--foreground", "--no-pidfile", f"--cache-dir={cache}", "-f", str(config), "-l", "debug"]
    result = run(argv, tmp_path)
    output = result.stdout + result.stderr
    assert "Successful alias table update for home.dyn.example.org" in output, output
    assert addresses(server.db, HOME) == ("127.0.0.1", None)


def test_curl_with_credentials_in_the_url(server: Server, tmp_path: Path) -> None:
    curl = support.require_binary("curl")
    secret = server.site.secrets[HOME]
    url = f"http://{HOME}:{secret}@127.0.0.1:{server.port}/nic/update?hostname={HOME}&myip=198.51.100.40,2001:db8::40"
    result = run([curl, "-sS", url], tmp_path)
    assert result.stdout == "good 198.51.100.40,2001:db8::40\n"
    assert addresses(server.db, HOME) == ("198.51.100.40", "2001:db8::40")
    # Without an address: the connection's (127.0.0.1), IPv6 kept.
    result = run([curl, "-sS", "-u", f"{HOME}:{secret}", f"{server.url}/nic/update"], tmp_path)
    assert result.stdout == "good 127.0.0.1,2001:db8::40\n"
    result = run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/nic/update"], tmp_path)
    assert result.stdout == "401"


def test_wget_with_credentials_in_the_url(server: Server, tmp_path: Path) -> None:
    # wget sends credentials only after a 401 with WWW-Authenticate: the challenge must be right.
    wget = support.require_binary("wget")
    secret = server.site.secrets[HOME]
    url = f"http://{HOME}:{secret}@127.0.0.1:{server.port}/nic/update?hostname={HOME}&myip=198.51.100.41"
    result = run([wget, "-qO-", url], tmp_path)
    assert result.stdout == "good 198.51.100.41\n", result.stderr
    assert addresses(server.db, HOME) == ("198.51.100.41", None)
    # OpenWrt ddns-scripts style: [USERNAME]:[PASSWORD]@ with the account token and [DOMAIN], [IP].
    url = f"http://alice:{server.site.token}@127.0.0.1:{server.port}/nic/update?hostname={OFFICE}&myip=198.51.100.42"
    assert run([wget, "-qO-", url], tmp_path).stdout == "good 198.51.100.42\n"
    assert addresses(server.db, OFFICE) == ("198.51.100.42", None)


def fritzbox_url(server: Server, domain: str, username: str, password: str, ipaddr: str, ip6addr: str) -> str:
    # The update URL as a Fritz!Box owner types it, with the box's placeholders filled in as the box does.
    template = "/nic/update?hostname=<domain>&myip=<ipaddr>,<ip6addr>&username=<username>&password=<pass>"
    for placeholder, value in (
        ("<domain>", domain),
        ("<username>", username),
        ("<pass>", password),
        ("<ipaddr>", ipaddr),
        ("<ip6addr>", ip6addr),
    ):
        template = template.replace(placeholder, value)
    return server.url + template


def test_fritzbox_style_url(server: Server) -> None:
    secret = server.site.secrets[HOME]
    with urllib.request.urlopen(fritzbox_url(server, HOME, HOME, secret, "198.51.100.50", "2001:db8::50")) as reply:
        assert reply.read().decode() == "good 198.51.100.50,2001:db8::50\n"
    # An IPv4-only line leaves <ip6addr> empty: the IPv6 address is kept.
    with urllib.request.urlopen(fritzbox_url(server, HOME, HOME, secret, "198.51.100.51", "")) as reply:
        assert reply.read().decode() == "good 198.51.100.51,2001:db8::50\n"
    assert addresses(server.db, HOME) == ("198.51.100.51", "2001:db8::50")
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(fritzbox_url(server, HOME, HOME, "wrong", "198.51.100.52", ""))
    assert failed.value.code == 401


def test_updater_command_line_mistakes(tmp_path: Path) -> None:
    binary = support.console_script("ddserver-updater")
    result = run([binary, "--listen", "nonsense"], tmp_path)
    assert result.returncode == 1 and "--listen" in result.stderr and "Traceback" not in result.stderr
    config = support.write_config_file(tmp_path / "c.conf", f"sqlite:///{tmp_path}/empty.sqlite3")
    result = run([binary, "--config", str(config), "--listen", f"127.0.0.1:{support.free_port()}"], tmp_path)
    assert result.returncode == 1 and "ddserver init" in result.stderr and "Traceback" not in result.stderr


ROOT = Path(__file__).resolve().parents[2]


def acme_txt(db: Database, name: str) -> list[str]:
    from ddserver.store import records

    host = hosts.get(db, name)
    return sorted(r.content for r in records.for_host(db, host.id) if r.name == f"_acme-challenge.{name}")


def test_certbot_hook(server: Server, tmp_path: Path) -> None:
    support.require_binary("curl")
    secret_file = tmp_path / "secret"
    secret_file.write_text(server.site.secrets[HOME])
    env = {
        "PATH": "/usr/bin:/bin",
        "DDSERVER_UPDATE_URL": server.url,
        "DDSERVER_SECRET_FILE": str(secret_file),
        "DDSERVER_WAIT_SECONDS": "0",
        "CERTBOT_DOMAIN": HOME,
        "CERTBOT_VALIDATION": "a" * 43,
    }
    hook = str(ROOT / "etc/acme/certbot-ddserver-hook.sh")
    result = subprocess.run([hook], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert acme_txt(server.db, HOME) == ["a" * 43]
    result = subprocess.run([hook], env={**env, "CERTBOT_AUTH_OUTPUT": ""}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert acme_txt(server.db, HOME) == []
    secret_file.write_text("wrong")
    result = subprocess.run([hook], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "badauth" in result.stderr


def test_acme_sh_hook(server: Server, tmp_path: Path) -> None:
    support.require_binary("curl")
    hook = ROOT / "etc/acme/dns_ddserver.sh"
    script = (
        f". {hook}\n"
        f'dns_ddserver_add "_acme-challenge.{OFFICE}" "challenge-value-1" || exit 3\n'
        f'dns_ddserver_add "_acme-challenge.{OFFICE}" "challenge-value-2" || exit 4\n'
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DDSERVER_UPDATE_URL": server.url,
        "DDSERVER_SECRET": server.site.token,
        "DDSERVER_LOGIN": "alice",
    }
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert acme_txt(server.db, OFFICE) == ["challenge-value-1", "challenge-value-2"]
    script = f". {hook}\ndns_ddserver_rm _acme-challenge.{OFFICE} challenge-value-1\n"
    assert subprocess.run(["sh", "-c", script], env=env, timeout=30).returncode == 0
    assert acme_txt(server.db, OFFICE) == ["challenge-value-2"]
