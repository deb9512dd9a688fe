"""Wheels from a checkout: each component installs on its own, the recursor without web dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["ddserver-recursor", "ddserver-updater", "ddserver-interface", "ddserver-bundle"]


def run(*argv: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@pytest.mark.slow
def test_recursor_wheel_installs_without_web_dependencies(tmp_path):
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT))
    for package in PACKAGES:
        run(
            *pip,
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(ROOT / "packages" / package),
        )
    built = sorted(p.name.split("-")[0] for p in wheels.glob("*.whl"))
    assert built == ["ddserver", "ddserver_bundle", "ddserver_interface", "ddserver_recursor", "ddserver_updater"]

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    vpip = [str(venv / "bin" / "python"), "-m", "pip"]
    run(*vpip, "install", "-q", "--find-links", str(wheels), "ddserver-recursor")
    installed = run(*vpip, "list", "--format=freeze").stdout.lower()
    for unwanted in ("bottle", "jinja2", "passlib", "libpass", "waitress"):
        assert unwanted not in installed, f"{unwanted} came with ddserver-recursor:\n{installed}"
    result = run(str(venv / "bin" / "ddserver-recursor"), "--help")
    assert "--pipe" in result.stdout and "--remote-socket" in result.stdout
    # The migrations ship inside the core wheel.
    probe = "from ddserver.db.migrate import available; print(len(available('sqlite')), len(available('mysql')))"
    counts = run(str(venv / "bin" / "python"), "-c", probe).stdout.split()
    assert counts[0] == counts[1] and int(counts[0]) >= 1
