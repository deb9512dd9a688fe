"""The sign-up captcha: a server-side POST to the provider's siteverify endpoint, with the stdlib.

reCAPTCHA v2 and v3, hCaptcha and Cloudflare Turnstile share one shape: POST ``secret``, ``response`` and
``remoteip`` as a form; the answer is JSON with ``success`` (and ``score`` for reCAPTCHA v3).
"""

from __future__ import annotations

import enum
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ddserver.config import CaptchaSection

logger = logging.getLogger(__name__)


class Provider(enum.Enum):
    NONE = "none"
    RECAPTCHA = "recaptcha"
    RECAPTCHA_V3 = "recaptcha-v3"
    HCAPTCHA = "hcaptcha"
    TURNSTILE = "turnstile"


@dataclass(frozen=True)
class ProviderInfo:
    verify_url: str
    script: str
    #: The form field the provider's widget fills in.
    field: str
    #: The CSS class of the widget's placeholder element.
    widget_class: str


PROVIDERS = {
    Provider.RECAPTCHA: ProviderInfo(
        "https://www.google.com/recaptcha/api/siteverify",
        "https://www.google.com/recaptcha/api.js",
        "g-recaptcha-response",
        "g-recaptcha",
    ),
    Provider.RECAPTCHA_V3: ProviderInfo(
        "https://www.google.com/recaptcha/api/siteverify",
        "https://www.google.com/recaptcha/api.js?render=",
        "g-recaptcha-response",
        "",
    ),
    Provider.HCAPTCHA: ProviderInfo(
        "https://api.hcaptcha.com/siteverify", "https://js.hcaptcha.com/1/api.js", "h-captcha-response", "h-captcha"
    ),
    Provider.TURNSTILE: ProviderInfo(
        "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        "https://challenges.cloudflare.com/turnstile/v0/api.js",
        "cf-turnstile-response",
        "cf-turnstile",
    ),
}


def info(section: CaptchaSection) -> ProviderInfo | None:
    provider = Provider(section.provider)
    return PROVIDERS.get(provider)


def judge(section: CaptchaSection, answer: dict[str, object]) -> bool:
    """Decide from the provider's JSON answer (pure: no I/O)."""
    if answer.get("success") is not True:
        return False
    if Provider(section.provider) is Provider.RECAPTCHA_V3:
        score = answer.get("score")
        if not isinstance(score, int | float) or score < section.min_score:
            return False
    return True


def verify(section: CaptchaSection, response: str, remote_ip: str | None = None, timeout: float = 5.0) -> bool:
    """Ask the provider whether the captcha answer is good. No provider configured: always good.

    A provider that cannot be reached counts as a failed captcha (the failure is logged).
    """
    details = info(section)
    if details is None:
        return True
    if not response:
        return False
    fields = {"secret": section.secret_key, "response": response}
    if remote_ip:
        fields["remoteip"] = remote_ip
    request = urllib.request.Request(
        section.verify_url or details.verify_url,
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            data = json.loads(answer.read(65536).decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.error("captcha: siteverify at %s failed: %s", section.verify_url or details.verify_url, exc)
        return False
    if not isinstance(data, dict):
        return False
    ok = judge(section, data)
    if not ok:
        logger.info("captcha: rejected (%s)", data.get("error-codes", ""))
    return ok
