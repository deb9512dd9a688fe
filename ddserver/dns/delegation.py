"""Users' own zones: where a zone's parent is looked for and when its delegation points at the service (pure).

The network part (asking the resolver and the parent's servers) lives with the components that may do I/O
(``ddserver.interface.delegation``); how a check moves the zone's state is ``ddserver.store.ownzones``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The outcome of one delegation check: ``ok``, else ``reason`` says what is wrong (for the owner)."""

    ok: bool
    reason: str = ""


def _name(text: str) -> str:
    return text.strip().rstrip(".").lower()


def ancestors(zone: str) -> list[str]:
    """The names the parent zone may be at, closest first: ``dyn.example.com`` -> ``example.com``, ``com``."""
    labels = _name(zone).split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def judge(zone: str, found: Iterable[str] | None, expected: Iterable[str]) -> Verdict:
    """Whether the NS names the parent gives for ``zone`` delegate it to the service.

    Every name of the delegation must be one of the service's nameservers (another server would answer for
    the zone too), and there must be one at least; it need not name all of them.

    :param found: the NS names in the parent's referral; None when the parent has no delegation.
    """
    wanted = {_name(n) for n in expected}
    if found is None:
        return Verdict(False, f"The parent zone does not delegate {zone}: it has no NS records for it.")
    names = sorted({_name(n) for n in found})
    if not names:
        return Verdict(False, f"The parent zone does not delegate {zone}: it has no NS records for it.")
    foreign = [n for n in names if n not in wanted]
    if foreign:
        return Verdict(
            False,
            f"The parent zone delegates {zone} to {', '.join(names)}; it must name only {', '.join(sorted(wanted))}.",
        )
    return Verdict(True)
