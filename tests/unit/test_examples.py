"""The systemd units under etc/ that admins copy: systemd accepts them, and each runs a command ddserver
installs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests import support

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "etc" / "systemd").glob("ddserver-*.*"))


def _console_scripts() -> set[str]:
    names = set(re.findall(r'"([a-z0-9-]+) = ddserver', (ROOT / "setup.py").read_text()))
    for setup in (ROOT / "packages").glob("*/setup.py"):
        names |= set(re.findall(r'"([a-z0-9-]+) = ddserver', setup.read_text()))
    return names


def test_units_run_commands_that_ddserver_installs() -> None:
    scripts = _console_scripts()
    assert {"ddserver", "ddserver-recursor", "ddserver-updater", "ddserver-interface", "ddserver-bundle"} <= scripts
    services = [u for u in UNITS if u.suffix == ".service"]
    assert {u.stem for u in services} >= {
        "ddserver-recursor", "ddserver-updater", "ddserver-interface", "ddserver-bundle", "ddserver-rfc2136",
        "ddserver-prune",
    }  # fmt: skip
    for unit in services:
        commands = re.findall(r"^#? ?ExecStart=/opt/ddserver/[a-z0-9]+/bin/(\S+)", unit.read_text(), re.M)
        assert commands and set(commands) <= scripts, unit.name
    for timer in (u for u in UNITS if u.suffix == ".timer"):
        assert timer.with_suffix(".service").exists(), timer.name


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = support.require_binary("systemd-analyze")
    for unit in UNITS:
        shutil.copy(unit, tmp_path / unit.name)
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The commands are not installed here, and users and paths of the target machine may be missing:
    # anything else (a misspelt setting, a bad section) is a real error.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line and "No such file or directory" not in line
    ]
    assert not problems, "\n".join(problems)
