"""The production installation of docs/install.md, done in a container-like root: scripts/install.sh makes the
user, folders, environments, units and database; systemd accepts every unit; each service starts with the
exact command line of its unit, as the user it names, and serves. And an upgrade from the previous release
with ``ddserver migrate`` while the old processes run."""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests import support
from tests.container import Container

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("bundle", "updater", "interface", "recursor", "rfc2136")
ZONE = "dyn.example.org"
PASSWORD = "a long enough password\n"
#: Where wheels of earlier commits are kept between test runs (one folder per commit).
WHEEL_CACHE = Path(tempfile.gettempdir()) / "ddserver-test-wheels"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("install")]


#: What a build of the checkout does not need (and what other tests may be writing meanwhile).
NOT_BUILT = shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".*_cache")


def build_wheels(checkout: Path, target: Path) -> Path:
    """ddserver's wheels from ``checkout`` and every dependency's, so the container installs without a network.

    The build runs in a copy: setuptools writes into the tree it builds, and other tests build this checkout too.
    """
    building = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.rmtree(building, ignore_errors=True)
    source = Path(tempfile.mkdtemp(prefix="ddserver-build-")) / "tree"
    shutil.copytree(checkout, source, ignore=NOT_BUILT)
    try:
        return _build(source, building, target)
    finally:
        shutil.rmtree(source.parent, ignore_errors=True)


def _build(checkout: Path, building: Path, target: Path) -> Path:
    result = subprocess.run(
        [
            support.python_bin(),
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-build-isolation",
            "-w",
            str(building),
            f"{checkout}[all]",
            *(str(p) for p in sorted((checkout / "packages").glob("ddserver-*"))),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        support.missing(f"cannot build the wheels (no package index?): {result.stderr[-1000:]}")
    try:
        building.rename(target)
    except OSError:  # another worker made it meanwhile
        shutil.rmtree(building, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheels(ROOT, tmp_path_factory.mktemp("wheels") / "wheels")


class Unit:
    """What a systemd unit file says that running it needs."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self.values: dict[str, list[str]] = {}
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith(("#", "[")):
                key, _, value = line.partition("=")
                self.values.setdefault(key.strip(), []).append(value.strip())

    def one(self, key: str, default: str = "") -> str:
        return self.values.get(key, [default])[-1]

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.one("ExecStart"))

    @property
    def groups(self) -> str:
        return ",".join([self.one("Group"), *self.one("SupplementaryGroups").split()])


def start_unit(box: Container, unit: Unit, log: Path, *extra: str) -> support.Process:
    """Start a unit's ExecStart as systemd would: its user, group and supplementary groups, its folder."""
    return box.start([*unit.argv, *extra], user=unit.one("User"), groups=unit.groups, log=log,
                     cwd=unit.one("WorkingDirectory", "/"))  # fmt: skip


def http_get(box: Container, url: str) -> str:
    probe = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
    result = box.run("python3", "-c", probe, url, check=False, timeout=30)
    return result.stdout if result.returncode == 0 else ""


def dig(box: Container, name: str, port: int) -> str:
    return box.run("dig", "+short", "+time=2", "+tries=1", "-p", str(port), "@127.0.0.1", name, "A", check=False).stdout


def stat(box: Container, path: str, check: bool = True) -> str:
    """``path``'s mode, owner and group in the container (its /run is not the host's)."""
    return box.run("stat", "-c", "%a %U %G", path, check=check).stdout.strip()


def install(box: Container, *components: str) -> subprocess.CompletedProcess[str]:
    argv = ["/src/scripts/install.sh", "--wheels", "/wheels", "--no-index"]
    for component in components:
        argv += ["--component", component]
    return box.run(*argv, timeout=1200)


def serves(box: Container, process: support.Process, url: str, expect: str, what: str) -> None:
    process.wait_for(lambda: expect in http_get(box, url), timeout=90, what=what)


def test_install_script_then_every_unit_runs_as_it_says(tmp_path: Path, wheels: Path) -> None:
    support.require_binary("systemd-analyze")
    support.require_binary("dig")
    pdns = support.require_binary("pdns_server", "/usr/sbin/pdns_server")
    with Container(tmp_path, ROOT, {"/wheels": wheels}) as box:
        result = install(box, *COMPONENTS)
        assert "install: created the system user ddserver" in result.stdout
        assert "schema version" in result.stdout

        # What the script made, with the owners and modes it promises.
        assert stat(box, "/etc/ddserver") == "750 root ddserver"
        assert stat(box, "/etc/ddserver/ddserver.conf") == "640 root ddserver"
        assert stat(box, "/etc/ddserver/secret.key") == "640 root ddserver"
        assert stat(box, "/etc/ddserver/data.key") == "640 root ddserver"
        assert "data_key_file = /etc/ddserver/data.key" in box.path("/etc/ddserver/ddserver.conf").read_text()
        assert stat(box, "/var/lib/ddserver") == "750 ddserver ddserver"
        assert stat(box, "/var/lib/ddserver/recursor") == "750 ddserver ddserver"
        assert stat(box, "/var/lib/ddserver/ddserver.sqlite3").endswith(" ddserver ddserver")
        assert stat(box, "/run/ddserver-recursor") == "2750 ddserver pdns"
        assert box.run("cat", "/etc/ddserver/ddserver.conf", user="nobody", check=False).returncode != 0
        assert "snapshot_dir = /var/lib/ddserver/recursor" in box.path("/etc/ddserver/ddserver.conf").read_text()

        # systemd accepts every unit as installed, commands and documentation included.
        unit_dir = box.path("/etc/systemd/system")
        names = sorted(p.name for p in unit_dir.glob("ddserver-*"))
        timers = ["ddserver-prune", "ddserver-notify", "ddserver-delegations"]
        expected = [f"ddserver-{c}.service" for c in COMPONENTS] + [
            f"{t}.{k}" for t in timers for k in ("service", "timer")
        ]
        assert names == sorted(expected)
        verify = box.run("systemd-analyze", "verify", "--man=no", *names, check=False)
        assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify.stdout + verify.stderr
        units = {name: Unit(unit_dir / name) for name in names}
        for unit in units.values():
            for doc in unit.values.get("Documentation", []):
                assert doc.startswith("file://") and box.path(doc[len("file://") :]).is_file(), (unit.name, doc)
            if unit.name.endswith(".service"):
                assert unit.one("User") == "ddserver" and unit.argv[0].startswith("/opt/ddserver/")
                assert box.run("getent", "passwd", unit.one("User"), check=False).returncode == 0

        # The web components, one after the other (bundle and interface share a port, as their units conflict).
        for name, url, expect in (
            ("ddserver-bundle.service", "http://127.0.0.1:8080/health", "ok"),
            ("ddserver-interface.service", "http://127.0.0.1:8080/health", "ok"),
            ("ddserver-updater.service", "http://127.0.0.1:8081/health", "ok"),
        ):
            with start_unit(box, units[name], tmp_path / f"{name}.log") as process:
                serves(box, process, url, expect, f"{name} to serve {url}")
                owners = {line.split()[0] for line in box.run("ps", "-eo", "user=,args=").stdout.splitlines()
                          if f" {units[name].argv[0]} " in line}  # fmt: skip
                assert owners == {"ddserver"}, owners

        # The recursor and Debian's PowerDNS, each as its unit runs it, configured as docs/install.md says.
        admin = ["/usr/local/bin/ddserver"]
        box.run(*admin, "zone", "add", ZONE, "--ns", "ns1.example.org", "--hostmaster", "hostmaster@example.org")
        box.run(*admin, "user", "add", "alice", "--email", "alice@example.org", "--password-stdin", input=PASSWORD)
        box.run(*admin, "host", "add", "alice", f"home.{ZONE}")
        box.run(*admin, "host", "set-address", f"home.{ZONE}", "192.0.2.1")
        pdns_conf = box.path("/etc/powerdns/pdns.conf")
        pdns_conf.write_text((ROOT / "etc" / "pdns" / "pdns-remote.conf").read_text() + PDNS_TEST)
        box.run("rm", "-f", "/etc/powerdns/pdns.d/bind.conf")
        box.run("install", "-d", "-m", "0755", "-o", "pdns", "-g", "pdns", "/run/pdns")  # its RuntimeDirectory
        debian = Unit(Path("/lib/systemd/system/pdns.service"))
        assert debian.argv[0] == pdns
        recursor_unit = units["ddserver-recursor.service"]
        with start_unit(box, recursor_unit, tmp_path / "recursor.log") as recursor:
            # ExecStartPost= waits for the socket; PowerDNS (After= it) starts then.
            box.run(*box_user(recursor_unit), *shlex.split(recursor_unit.one("ExecStartPost")), timeout=60)
            assert recursor.alive()
            assert stat(box, "/run/ddserver-recursor/recursor.sock") == "660 ddserver pdns"
            powerdns = start_unit(box, debian, tmp_path / "pdns.log")
            powerdns.wait_for(lambda: dig(box, f"home.{ZONE}", 5300).split() == ["192.0.2.1"], 60, "an answer")
            # PowerDNS caches the answer for 60 s: a new address shows at once only if the recursor purged it
            # through PowerDNS's control socket.
            box.run(*admin, "host", "set-address", f"home.{ZONE}", "192.0.2.2")
            powerdns.wait_for(lambda: dig(box, f"home.{ZONE}", 5300).split() == ["192.0.2.2"], 20, "the purge")
            assert recursor.alive() and powerdns.alive()
            powerdns.stop()

        # The RFC 2136 worker (one pass) and the daily prune.
        rfc2136 = units["ddserver-rfc2136.service"]
        once = box.run(*box_user(rfc2136), *rfc2136.argv, "--once", check=False)
        assert once.returncode == 0, once.stdout + once.stderr
        prune = units["ddserver-prune.service"]
        pruned = box.run(*box_user(prune), *prune.argv, check=False)
        assert pruned.returncode == 0 and "pruned " in pruned.stdout, pruned.stdout + pruned.stderr
        notify = units["ddserver-notify.service"]
        notified = box.run(*box_user(notify), *notify.argv, check=False)
        assert notified.returncode == 0 and "queued 0 notices" in notified.stdout, notified.stdout + notified.stderr
        # The hourly check of users' zones (none here): the admin environment has dnspython for it.
        checks = units["ddserver-delegations.service"]
        checked = box.run(*box_user(checks), *checks.argv, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


#: What the test changes in etc/pdns/pdns-remote.conf: a port a user may bind without privileges.
PDNS_TEST = """
# Test: a port above 1023 (Debian's unit grants CAP_NET_BIND_SERVICE for 53).
local-address=127.0.0.1
local-port=5300
"""


def box_user(unit: Unit) -> list[str]:
    """The setpriv prefix that runs a command as a unit's user and groups."""
    return ["setpriv", f"--reuid={unit.one('User')}", f"--regid={unit.one('Group')}", f"--groups={unit.groups}"]


def _cached_wheels(commit: str) -> Path:
    """Wheels of an earlier commit, built once and kept in the temp folder, keyed by the commit."""
    target = WHEEL_CACHE / commit
    if target.is_dir():
        return target
    WHEEL_CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ddserver-old-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, timeout=120)
        assert archive.returncode == 0, archive.stderr
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=120)
        return build_wheels(tree, target)


def previous_release() -> str:
    """The release before this one: the tagged commit before HEAD, else the parent of the last commit that
    added a migration (so that upgrading applies at least one)."""
    git = ["git", "-C", str(ROOT)]
    tag = subprocess.run([*git, "describe", "--tags", "--abbrev=0", "HEAD^"], capture_output=True, text=True)
    if tag.returncode == 0 and tag.stdout.strip():
        return subprocess.run([*git, "rev-list", "-n1", tag.stdout.strip()], capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    added = subprocess.run([*git, "log", "-1", "--format=%H", "--diff-filter=A", "--", "sql/"],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return subprocess.run([*git, "rev-parse", f"{added}^"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def update(box: Container, secret: str, address: str) -> str:
    """A dyndns2 update from inside the container, as a router sends it."""
    probe = (
        "import base64, sys, urllib.request\n"
        "request = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Basic ' + sys.argv[2]})\n"
        "print(urllib.request.urlopen(request, timeout=5).read().decode())"
    )
    url = f"http://127.0.0.1:8081/nic/update?hostname=home.{ZONE}&myip={address}"
    credentials = base64.b64encode(f"home.{ZONE}:{secret}".encode()).decode()
    return box.run("python3", "-c", probe, url, credentials).stdout.strip()


def interpreter(box: Container) -> str:
    """The release folder whose Python runs the updater (its server's workers included)."""
    lines = box.run("ps", "-eo", "args=").stdout.splitlines()
    found = {line.split()[0] for line in lines if "/opt/ddserver/updater/bin/ddserver-updater" in line}
    releases = {path.split("/")[4] for path in found if path.startswith("/opt/ddserver/releases/")}
    assert len(releases) == 1, lines
    return releases.pop()


def test_upgrade_with_migrate_while_the_old_release_runs(tmp_path: Path, wheels: Path) -> None:
    if not (ROOT / ".git").exists():
        support.missing("the upgrade test needs the git history of the checkout")
    old = previous_release()
    old_wheels = _cached_wheels(old)
    with Container(tmp_path, ROOT, {"/wheels-old": old_wheels, "/wheels": wheels}) as box:
        box.run("/src/scripts/install.sh", "--component", "updater", "--wheels", "/wheels-old", "--no-index",
                timeout=1200)  # fmt: skip
        admin = ["/usr/local/bin/ddserver"]
        box.run(*admin, "zone", "add", ZONE, "--ns", "ns1.example.org", "--hostmaster", "hostmaster@example.org")
        box.run(*admin, "user", "add", "alice", "--email", "alice@example.org", "--password-stdin", input=PASSWORD)
        secret = box.run(*admin, "host", "add", "alice", f"home.{ZONE}").stdout.strip().splitlines()[-1]
        unit = Unit(box.path("/etc/systemd/system/ddserver-updater.service"))
        with start_unit(box, unit, tmp_path / "old.log") as running:
            serves(box, running, "http://127.0.0.1:8081/health", "ok", "the old updater")
            old_release = interpreter(box)
            assert update(box, secret, "192.0.2.1") == "good 192.0.2.1"

            # docs/install.md, Upgrading: the new release beside the running one, then the migrations.
            box.run(*INSTALL_NEW, timeout=1200)
            migrated = box.run(*admin, "migrate")
            assert "applied " in migrated.stdout, migrated.stdout  # at least one migration ran
            # The old process survives them: it still answers, and its updates still land.
            assert "ok" in http_get(box, "http://127.0.0.1:8081/health")
            assert update(box, secret, "192.0.2.2") == "good 192.0.2.2"
            assert interpreter(box) == old_release and running.alive()

        # Restarted, the unit runs the new release on the migrated database.
        with start_unit(box, unit, tmp_path / "new.log") as restarted:
            serves(box, restarted, "http://127.0.0.1:8081/health", "ok", "the new updater")
            assert interpreter(box) != old_release
            assert update(box, secret, "192.0.2.3") == "good 192.0.2.3"
            assert update(box, secret, "192.0.2.3") == "nochg 192.0.2.3"
        assert len(box.run("ls", "/opt/ddserver/releases").stdout.split()) == 2  # the old one is kept
        listed = box.run(*admin, "host", "list").stdout
        assert listed.startswith(f"home.{ZONE}\t192.0.2.3\t"), listed


#: The upgrade's install, as docs/install.md gives it (with the test's wheels, and no package index).
INSTALL_NEW = ("/src/scripts/install.sh", "--component", "updater", "--no-init", "--wheels", "/wheels", "--no-index")


def test_install_with_another_user_and_prefix(tmp_path: Path, wheels: Path) -> None:
    support.require_binary("systemd-analyze")
    with Container(tmp_path, ROOT, {"/wheels": wheels}) as box:
        box.run("/src/scripts/install.sh", "--component", "rfc2136", "--user", "dyndns", "--prefix", "/srv/dd",
                "--wheels", "/wheels", "--no-index", timeout=1200)  # fmt: skip
        assert stat(box, "/etc/ddserver/ddserver.conf") == "640 root dyndns"
        assert stat(box, "/var/lib/ddserver/ddserver.sqlite3").endswith(" dyndns dyndns")
        assert box.run("getent", "passwd", "ddserver", check=False).returncode != 0
        names = ["ddserver-rfc2136.service", "ddserver-prune.service", "ddserver-prune.timer",
                 "ddserver-notify.service", "ddserver-notify.timer",
                 "ddserver-delegations.service", "ddserver-delegations.timer"]  # fmt: skip
        verify = box.run("systemd-analyze", "verify", "--man=no", *names, check=False)
        assert verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(), verify.stdout + verify.stderr
        unit = Unit(box.path("/etc/systemd/system/ddserver-rfc2136.service"))
        assert unit.one("User") == "dyndns" and unit.one("Group") == "dyndns"
        assert unit.argv[0] == "/srv/dd/rfc2136/bin/ddserver-rfc2136"
        once = box.run(*box_user(unit), *unit.argv, "--once", check=False)
        assert once.returncode == 0, once.stdout + once.stderr
        # The admin command runs as the service's user when root calls it.
        assert box.run("/usr/local/bin/ddserver", "zone", "list").returncode == 0
        assert stat(box, "/var/lib/ddserver/ddserver.sqlite3").endswith(" dyndns dyndns")
