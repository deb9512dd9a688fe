"""Forms: the values a person typed and the error next to each field, checked on the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ddserver.errors import ValidationError


class Form:
    """Field values (as typed, for showing the form again) and one error message per field."""

    def __init__(self, values: dict[str, Any] | None = None, secret: tuple[str, ...] = ()) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.errors: dict[str, str] = {}
        self.secret = set(secret)

    @classmethod
    def from_request(cls, ctx: Any, *names: str, secret: tuple[str, ...] = ()) -> Form:
        """Read the named fields; fields in ``secret`` (passwords) are kept for checking, never re-shown."""
        values = {}
        for name in names:
            values[name] = (ctx.request.forms.getunicode(name) or "") if name in secret else ctx.form(name)
        return cls(values, secret)

    def __getitem__(self, name: str) -> Any:
        return self.values.get(name, "")

    def shown(self, name: str) -> Any:
        """The value to put back into the field (never a password)."""
        return "" if name in self.secret else self.values.get(name, "")

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def check(self, name: str, check: Callable[[str], Any]) -> Any:
        """Run a validator on a field; its ValidationError becomes the field's error.

        :returns: the validator's result, or None when it failed.
        """
        try:
            result = check(self.values.get(name, ""))
        except ValidationError as exc:
            self.error(name, exc.message)
            return None
        self.values[name] = result if isinstance(result, str) else self.values.get(name, "")
        return result

    @property
    def ok(self) -> bool:
        return not self.errors
