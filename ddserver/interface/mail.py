"""Outgoing mail (activation, password reset, notifications) through smtplib, and the outbox that sends it off
the request path."""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ddserver.config import MailSection

logger = logging.getLogger(__name__)


def build(section: MailSection, to: str, subject: str, body: str, site_name: str = "ddserver") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"{site_name} <{section.sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=section.sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def send(section: MailSection, message: EmailMessage) -> bool:
    """Send one message. An empty ``[mail] host`` logs it instead.

    :returns: False when the SMTP server could not take it (the failure is logged, never raised).
    """
    if not section.host:
        logger.info("mail not sent ([mail] host is empty): to %s: %s", message["To"], message["Subject"])
        return True
    try:
        if section.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                section.host, section.port, timeout=section.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(section.host, section.port, timeout=section.timeout)
        with client:
            if section.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if section.username:
                client.login(section.username, section.password)
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        logger.error("mail to %s failed: %s: %s", message["To"], exc.__class__.__name__, exc)
        return False
    logger.info("mail sent to %s: %s", message["To"], message["Subject"])
    return True


class Outbox:
    """Work that sends mail, done by one background thread, off the request path: a request that may or may
    not mail (a reset for an account that may not exist) answers in the same time either way.

    The thread starts with the first job and ends after a minute without one. Jobs are dropped (and logged)
    when ``limit`` are waiting; a job's exception is logged, never raised.
    """

    IDLE = 60.0

    def __init__(self, limit: int = 1000) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(limit)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                logger.error("mail dropped: %d are waiting to be sent", self._jobs.maxsize)
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mail-outbox", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            try:
                job()
            except Exception:
                logger.exception("mail job failed")
            finally:
                self._jobs.task_done()

    def join(self) -> None:
        """Wait until every job submitted so far is done (for tests and shutdown)."""
        self._jobs.join()
