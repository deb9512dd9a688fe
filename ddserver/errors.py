"""The root exception of ddserver and the failures every component shares.

Each class's docstring is its message; components map these to their own answers (a dyndns2 code,
an HTTP status, a pipe ``FAIL``, an exit code) in one place each.
"""

from __future__ import annotations


class DDServerError(Exception):
    """ddserver failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(DDServerError):
    """The configuration is not valid."""


class DatabaseError(DDServerError):
    """The database failed."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached."""


class DatabaseTimeout(DatabaseUnavailable):
    """The database did not answer in time."""


class SchemaError(DatabaseError):
    """The database schema does not match this version of ddserver."""


class ValidationError(DDServerError):
    """The value is not valid."""


class NotFound(DDServerError):
    """No such object."""


class Conflict(DDServerError):
    """The object exists already."""


class LimitReached(DDServerError):
    """A limit has been reached."""


class MissingDependency(DDServerError):
    """A Python package this function needs is not installed."""
