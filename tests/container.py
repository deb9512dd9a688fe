"""A container-like root for installation tests: a copy of /etc, this machine's /usr read-only, fresh /opt, /var,
/run and /usr/local, in mount, PID and network namespaces of their own; everything in it ends with it.

Usage::

    with Container(tmp_path, checkout=ROOT, mounts={"/wheels": wheels}) as box:
        box.run("/src/scripts/install.sh", "--component", "bundle", "--wheels", "/wheels", "--no-index")
        server = box.start(["/opt/ddserver/bundle/bin/ddserver-bundle"], user="ddserver", log=tmp_path / "b.log")
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests import support

#: PID 1 of the container: waits for its orphans (so none stays defunct) until it is told to stop.
INIT = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""

#: Run by unshare in the new namespaces: mounts the container's file systems, then becomes its PID 1.
SETUP = """
set -e
root=$1 checkout=$2
shift 2
mount --rbind /usr "$root/usr"
mount -o remount,bind,ro "$root/usr"
mount --bind "$root/.usr-local" "$root/usr/local"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount --bind "$checkout" "$root/src"
mount -o remount,bind,ro "$root/src"
while [ $# -gt 0 ]; do
  mount --bind "$1" "$root/$2"
  mount -o remount,bind,ro "$root/$2"
  shift 2
done
[ -n "$NEW_NET" ] && ip link set lo up
exec chroot "$root" /usr/bin/python3 -c "$INIT"
"""

ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


def require_namespaces() -> None:
    """Skip (fail under CI) where namespaces cannot be made (not root, or a sandbox forbids them)."""
    for tool in ("unshare", "nsenter", "chroot", "setpriv", "ip"):
        support.require_binary(tool)
    if os.geteuid() != 0:
        support.missing("the installation tests need root (a container of their own)")
    probe = subprocess.run(["unshare", "--mount", "--pid", "--net", "--fork", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        support.missing(f"cannot make namespaces here: {probe.stderr.decode(errors='replace').strip()}")


class Container:
    """The root folder and the PID 1 holding its namespaces; ``stop()`` ends every process in it."""

    def __init__(
        self, folder: Path, checkout: Path, mounts: dict[str, Path] | None = None, network: bool = False
    ) -> None:
        """:param mounts: host folders to show read-only in the container, by their path there.
        :param network: share the machine's network (to reach a package index) instead of a loopback of its own.
        """
        require_namespaces()
        self.root = folder / "root"
        mounts = mounts or {}
        self.network = network
        for name in ("usr", ".usr-local", "dev", "proc", "run", "tmp", "src", "opt", "var", "root"):
            (self.root / name).mkdir(parents=True)
        binds = []
        for inside, outside in mounts.items():
            (self.root / inside.strip("/")).mkdir(parents=True)
            binds += [str(outside), inside.strip("/")]
        for name in ("bin", "sbin", "lib", "local"):
            (self.root / ".usr-local" / name).mkdir()
        for name in ("bin", "sbin", "lib", "lib64"):
            if Path(f"/{name}").is_symlink():
                (self.root / name).symlink_to(os.readlink(f"/{name}"))
        # The machine's configuration, users and groups (pdns among them) as a fresh Debian would have them,
        # without anything ddserver's installation makes.
        # (cp -a: owners too, as /etc/powerdns/pdns.conf's group matters to PowerDNS.)
        subprocess.run(["cp", "-a", "/etc", str(self.root / "etc")], check=True, timeout=120)
        for made in ("ddserver", "systemd/system/ddserver-*", "tmpfiles.d/ddserver-*"):
            for path in (self.root / "etc").glob(made):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        for name in ("lib", "log", "cache", "tmp"):
            (self.root / "var" / name).mkdir()
        (self.root / "var" / "run").symlink_to("/run")
        self._log = open(folder / "container.log", "wb")  # noqa: SIM115 - closed in stop()
        self._holder = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                *([] if network else ["--net"]),
                "--fork",
                "--kill-child",
                "sh",
                "-c",
                SETUP,
                "setup",
                str(self.root),
                str(checkout),
                *binds,
            ],
            env={**ENV, "INIT": INIT, "NEW_NET": "" if network else "yes"},
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError(f"the container did not start: {(folder / 'container.log').read_text()}")
        self.pid = self._init_pid()

    def _init_pid(self) -> int:
        """The host's pid of the container's PID 1 (the child of unshare)."""
        children = Path(f"/proc/{self._holder.pid}/task/{self._holder.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def enter(
        self, argv: Sequence[str | os.PathLike[str]], user: str | None = None, groups: str = "", cwd: str = "/"
    ) -> list[str]:
        """The command line that runs ``argv`` in the container, in ``cwd``, as root or as ``user`` (with
        ``groups``: a comma-separated list, as systemd's Group= and SupplementaryGroups= give)."""
        prefix = ["nsenter", f"--target={self.pid}", "--mount", "--pid", "--net", "--root", "--wd", "--"]
        if self.network:
            prefix.remove("--net")
        prefix += ["/usr/bin/env", "-i", "-C", cwd, *(f"{k}={v}" for k, v in ENV.items())]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}"]
            prefix += [f"--groups={groups}"] if groups else ["--clear-groups"]
            prefix += ["--reset-env"]
        return prefix + [str(a) for a in argv]

    def run(
        self,
        *argv: str | os.PathLike[str],
        user: str | None = None,
        input: str | None = None,
        timeout: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.enter(argv, user), input=input, capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        return result

    def start(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log: Path,
        user: str | None = None,
        groups: str = "",
        cwd: str = "/",
    ) -> support.Process:
        """A server in the container, stopped with the test (or with the container at the latest)."""
        return support.Process(self.enter(argv, user, groups, cwd), log=log)

    def path(self, inside: str) -> Path:
        """The host's path of a path inside the container."""
        return self.root / inside.lstrip("/")

    def stop(self) -> None:
        """End PID 1, which ends every process of the container, and release its mounts."""
        if self._holder.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, AttributeError):
                os.killpg(self._holder.pid, signal.SIGKILL)
            try:
                self._holder.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self._holder.pid, signal.SIGKILL)
                self._holder.wait(10)
        if not self._log.closed:
            self._log.close()
        # The mounts went with the mount namespace: what is left is plain files.
        deadline = time.monotonic() + 10
        while (self.root / "usr" / "bin").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
