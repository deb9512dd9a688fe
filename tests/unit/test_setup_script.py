"""scripts/setup-system.sh installs the packages into .venv once, then again only when the packaging changed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests import support

ROOT = Path(__file__).resolve().parents[2]

#: Stands for the virtual environment's python: records each call instead of running pip.
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
"""


def _checkout(folder: Path) -> Path:
    """A copy of what setup-system.sh reads, with a .venv whose python only records its calls."""
    (folder / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup-system.sh", folder / "scripts")
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, folder)
    shutil.copytree(ROOT / "packages", folder / "packages")
    python = folder / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return folder


def _setup(folder: Path, *args: str) -> tuple[str, list[str]]:
    """Run the script; returns its output and the pip calls it made."""
    calls = folder / ".venv" / "bin" / "calls"
    calls.unlink(missing_ok=True)
    result = subprocess.run(
        [str(folder / "scripts" / "setup-system.sh"), *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr, calls.read_text().splitlines() if calls.exists() else []


def test_packages_install_once_and_again_when_the_packaging_changes(tmp_path: Path) -> None:
    support.require_binary("dpkg-query")
    folder = _checkout(tmp_path / "checkout")
    output, calls = _setup(folder)
    assert output == "setup: installing ddserver and its components into .venv (log: .venv/setup.log)\n"
    assert any("install -q -e .[all] " in call for call in calls), calls
    assert _setup(folder) == ("", [])  # nothing changed: nothing installed, nothing printed
    _, calls = _setup(folder, "--test")  # the test tools are more
    assert any("-e .[all,test] " in call for call in calls), calls
    assert _setup(folder) == ("", [])  # the quick start after the tests: everything is there
    assert _setup(folder, "--test") == ("", [])
    setup_py = folder / "packages" / "ddserver-updater" / "setup.py"
    setup_py.write_text(setup_py.read_text() + "\n# a new entry point, say\n")
    _, calls = _setup(folder)
    assert any("install -q -e .[all] " in call for call in calls), calls
