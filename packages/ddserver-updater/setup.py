"""The ddserver-updater distribution: ddserver's dyndns2 update API."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE.parent.parent / "ddserver" / "__init__.py").read_text()).group(1)

setup(
    name="ddserver-updater",
    version=VERSION,
    description="ddserver's dyndns2 update API.",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    packages=[],
    install_requires=[f"ddserver[updater]=={VERSION}"],
    entry_points={"console_scripts": ["ddserver-updater = ddserver.updater.main:main"]},
)
