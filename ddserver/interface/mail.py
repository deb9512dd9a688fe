"""Outgoing mail (activation, password reset, notifications) through smtplib."""

from __future__ import annotations

import logging
import smtplib
import ssl
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
