"""The ddserver-recursor distribution: ddserver's PowerDNS backend (pipe and remote), without web dependencies."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE.parent.parent / "ddserver" / "__init__.py").read_text()).group(1)

setup(
    name="ddserver-recursor",
    version=VERSION,
    description="ddserver's PowerDNS backend (pipe and remote), without web dependencies.",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    packages=[],
    install_requires=[f"ddserver[recursor]=={VERSION}"],
    entry_points={"console_scripts": ["ddserver-recursor = ddserver.recursor.main:main"]},
)
