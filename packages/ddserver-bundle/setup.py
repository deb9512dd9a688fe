"""The ddserver-bundle distribution: ddserver's web interface and updater in one WSGI application."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE.parent.parent / "ddserver" / "__init__.py").read_text()).group(1)

setup(
    name="ddserver-bundle",
    version=VERSION,
    description="ddserver's web interface and updater in one WSGI application.",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    packages=[],
    install_requires=[f"ddserver[bundle]=={VERSION}"],
    entry_points={"console_scripts": ["ddserver-bundle = ddserver.bundle:main"]},
)
