#!/usr/bin/env python3
"""Extract the interface's messages, merge them into each language's .po, and compile the .mo files.

Run after changing texts: .venv/bin/python scripts/interface-catalogs.py  (needs Babel, in the test extra).
The .mo files are committed, so an installed ddserver needs no Babel.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "ddserver" / "interface" / "locale"
BABEL = [sys.executable, "-m", "babel.messages.frontend"]


def main() -> int:
    pot = LOCALE / "ddserver.pot"
    subprocess.run(
        [
            *BABEL,
            "extract",
            "-F",
            str(LOCALE / "babel.cfg"),
            "-k",
            "gettext",
            "-k",
            "_",
            "-o",
            str(pot),
            "--no-location",
            "--sort-output",
            "--omit-header",
            "--project",
            "ddserver",
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        [*BABEL, "update", "-i", str(pot), "-d", str(LOCALE), "-D", "ddserver", "--no-fuzzy-matching"],
        check=True,
    )
    subprocess.run([*BABEL, "compile", "-d", str(LOCALE), "-D", "ddserver", "--statistics"], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
