"""Builds the ``ddserver`` distribution: the core package, with one extra per component."""

import re
from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "ddserver" / "__init__.py").read_text()).group(1)

WEB = ["bottle>=0.13", "waitress>=3.0"]
PASSWORDS = ["libpass>=1.9", "argon2-cffi>=23.1"]

EXTRAS = {
    # The recursor needs nothing beyond the core: it must import without Bottle, Jinja2 or passlib.
    "recursor": [],
    # gunicorn and granian serve the updater with several worker processes ([updater] server): one Python
    # process holds one core at most, and routers' updates are many small requests.
    "updater": WEB + PASSWORDS + ["gunicorn>=22", "granian>=2.0"],
    # dnspython: the delegation checks of users' own zones ("check now", and 'ddserver zone check-delegations').
    "interface": WEB + PASSWORDS + ["jinja2>=3.1", "dnspython>=2.4"],
    "rfc2136": ["dnspython>=2.4"],
    "admin": [*PASSWORDS, "dnspython>=2.4"],
}
EXTRAS["bundle"] = sorted(set(EXTRAS["updater"] + EXTRAS["interface"]))
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
EXTRAS["test"] = [
    "pytest>=8",
    "pytest-xdist>=3.5",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "dnspython>=2.4",
    "setuptools>=68",
    "wheel>=0.42",
    "ruff>=0.6",
    # Type checking of the package in scripts/test.sh, with PyMySQL's type stubs.
    "mypy>=1.10",
    "types-PyMySQL>=1.1",
    # Interface tests: WebTest drives the WSGI app in-process with cookies and real form parsing;
    # aiosmtpd receives the mail the interface sends; Playwright drives Debian's Chromium (never a
    # downloaded browser); Babel extracts and compiles the interface's gettext catalogs.
    "webtest>=3.0",
    "aiosmtpd>=1.4",
    "playwright>=1.40",
    "babel>=2.14",
]

setup(
    name="ddserver",
    version=VERSION,
    description="Self-hosted dynamic DNS service: dyndns2 updater, web interface, PowerDNS backend, RFC 2136",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    # Namespace discovery takes the folders of templates, static files, locales and SQL as packages too,
    # so their files are packaged by the patterns below.
    packages=find_namespace_packages(include=["ddserver", "ddserver.*"], exclude=["*.__pycache__"]),
    include_package_data=True,
    package_data={
        "ddserver": [
            "sql/*/*.sql",
            "interface/templates/**/*",
            "interface/static/**/*",
            "interface/locale/*/LC_MESSAGES/*.mo",
            "py.typed",
        ]
    },
    install_requires=["idna>=3.6", "pymysql>=1.1", "cryptography>=38"],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "ddserver = ddserver.cli:main",
            "ddserver-rfc2136 = ddserver.rfc2136.main:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: Name Service (DNS)",
    ],
)
