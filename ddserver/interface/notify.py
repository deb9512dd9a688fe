"""``ddserver notify``: the daily job that mails host owners (stale hosts, their removal, abuse flags) and removes
stale hosts nobody confirmed, in each owner's language, with the interface's mail templates and SMTP settings.

What is due is decided in the database (``store.notices``); this module renders and sends. The command line
calls ``run``; tests pass ``at`` to move the clock instead of waiting.
"""

from __future__ import annotations

import logging
import time
import types
from dataclasses import dataclass, field
from typing import Any

from ddserver import validate
from ddserver.config import Config
from ddserver.db import Database
from ddserver.interface import i18n
from ddserver.interface.app import make_environment
from ddserver.interface.routes import deliver
from ddserver.secrets import new_token
from ddserver.store import notices

logger = logging.getLogger(__name__)

DAY = 86400
#: A claim older than this was left by a run that died (an SMTP conversation is over in [mail] timeout).
CLAIM_TIMEOUT = 3600
#: Failures in a row after which a run stops trying (the SMTP server is down: each try waits [mail] timeout).
GIVE_UP_AFTER = 3
#: A confirmation link stays valid this long after the removal is due (the host is gone by then anyway).
LINK_SLACK = DAY


@dataclass
class Report:
    """What one run did."""

    queued: int = 0
    sent: int = 0
    failed: int = 0
    #: Queued notices not tried after the SMTP server failed GIVE_UP_AFTER times in a row.
    left: int = 0
    removed: list[str] = field(default_factory=list)
    #: Notices whose run died while sending: not sent again.
    unknown: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"queued {self.queued} notices, sent {self.sent}, {self.failed} failed"
            + (f", {self.left} not tried after {GIVE_UP_AFTER} failures in a row" if self.left else "")
            + (" (retried on the next run)" if self.failed else ""),
            f"removed {len(self.removed)} stale hosts" + (": " + ", ".join(self.removed) if self.removed else ""),
        ]
        if self.unknown:
            out.append(
                f"{len(self.unknown)} notices were being sent by a run that did not finish; not sent again: "
                + ", ".join(self.unknown)
            )
        return out


def run(config: Config, db: Database, at: float | None = None) -> Report:
    """Queue what is due, remove what is overdue, then send every queued notice once.

    :param at: the time to act as of (Unix seconds), for tests; default now.
    """
    stamp = int(time.time() if at is None else at)
    section = config.notify
    report = Report()
    if section.stale_after_days:
        report.queued += notices.queue_stale(db, stale_after=section.stale_after_days * DAY, at=stamp)
        if section.remove_after_days:
            for candidate in notices.removable(db, remove_after=section.remove_after_days * DAY, at=stamp):
                if notices.remove(db, candidate, at=stamp):
                    logger.info("removed %s: stale and not confirmed", candidate.host_name)
                    report.removed.append(candidate.host_name)
    if section.abuse:
        report.queued += notices.queue_abuse(db, at=stamp)
    report.unknown = notices.mark_unknown(db, claimed_before=stamp - CLAIM_TIMEOUT)
    for what in report.unknown:
        logger.warning("notice %s: its run died while sending it; not sent again", what)

    site = _Site(config)
    queue = notices.pending(db)
    in_a_row = 0
    for index, notice in enumerate(queue):
        if in_a_row >= GIVE_UP_AFTER:
            report.left = len(queue) - index
            break
        token: str | None = None
        expires: int | None = None
        if notice.kind is notices.Kind.STALE and section.remove_after_days:
            token = new_token()[0]
            expires = stamp + section.remove_after_days * DAY + LINK_SLACK
        # Recorded before the mail goes out: a run that dies while sending never sends it again.
        if not notices.claim(db, notice.id, at=stamp, token=token, expires_at=expires):
            continue  # another run took it
        if site.send(notice, token):
            notices.mark_sent(db, notice.id, at=stamp)
            report.sent += 1
            in_a_row = 0
        else:
            notices.release(db, notice.id)
            report.failed += 1
            in_a_row += 1
    notices.forget_gone(db)
    return report


class _Site:
    """Renders the mail templates in an owner's language and sends them with ``[mail]``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        env = make_environment()
        env.globals["site_name"] = config.interface.site_name
        self._site = types.SimpleNamespace(
            config=config, render_template=lambda name, **values: env.get_template(name).render(**values)
        )

    def send(self, notice: notices.Pending, token: str | None) -> bool:
        section = self.config.notify
        lang = notice.language if notice.language in i18n.LANGUAGES else self.config.interface.default_language
        catalog = i18n.translations(lang or i18n.DEFAULT)
        name = validate.to_unicode(notice.host_name) if "xn--" in notice.host_name else notice.host_name
        values: dict[str, Any] = {
            "user": types.SimpleNamespace(username=notice.username),
            "host": name,
            "host_id": notice.host_id,
            "stale_days": section.stale_after_days,
            "remove_days": section.remove_after_days,
            "token": token,
        }
        subjects = {
            notices.Kind.STALE: catalog.gettext("%(host)s has not been updated for %(days)s days"),
            notices.Kind.REMOVAL: catalog.gettext("%(host)s has been removed"),
            notices.Kind.ABUSE: catalog.gettext("%(host)s has been flagged for abuse"),
        }
        subject = subjects[notice.kind] % {"host": name, "days": section.stale_after_days}
        return deliver(self._site, catalog, notice.email, subject, f"host_{notice.kind.value}", **values)
