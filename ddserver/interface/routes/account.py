"""Accounts: log in and out, second factor, sign-up and activation, lost password, account settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bottle

from ddserver import passwords, validate
from ddserver.errors import Conflict, LimitReached, NotFound
from ddserver.interface import captcha, limits, totp
from ddserver.interface.forms import Form
from ddserver.interface.i18n import LANGUAGES
from ddserver.interface.routes import deliver, later, password_problem, safe_next, send_mail
from ddserver.interface.web import LANG_COOKIE, AuthLevel, Context
from ddserver.store import accounts, events, sessions, tokens, users

ACTIVATION = "activation"
RESET = "reset"
EMAIL = "email"
#: Update and API tokens (``routes.tokens``; username + a token).
UPDATE = tokens.UPDATE


def _too_many(ctx: Context, form: Form, template: str, **values: Any) -> str:
    form.error("_form", ctx.gettext("Too many attempts. Wait a few minutes and try again."))
    return ctx.render(template, status=429, form=form, **values)


# -- log in and out --------------------------------------------------------------------------------


def login_page(ctx: Context) -> str:
    if ctx.user is not None:
        return ctx.redirect(safe_next(ctx.query("next")))
    return ctx.render("login.html", form=Form({"next": ctx.query("next")}))


def login(ctx: Context) -> str:
    form = Form.from_request(ctx, "login", "password", "remember", "next", secret=("password",))
    # The login is resolved to its account first: a name and its e-mail address share one counter.
    user = users.find_login(ctx.db, form["login"]) if form["login"] else None
    guard = limits.login_guard(ctx, form["login"], user)
    if guard.blocked(ctx):
        return _too_many(ctx, form, "login.html")
    if user is None:
        # Spend the time of a real check: a missing account must not answer faster than a wrong password.
        passwords.dummy_verify()
        check = passwords.PasswordCheck(False)
    else:
        check = passwords.verify_password(form["password"], user.password_hash)
    if user is None or not check.ok:
        guard.failed(ctx, user)
        ctx.site.metrics.login(False)
        form.error("_form", ctx.gettext("The name or the password is wrong."))
        return ctx.render("login.html", status=401, form=form)
    if check.new_hash:
        users.set_password_hash(ctx.db, user.id, check.new_hash)
    # The password was right: telling why the account cannot log in reveals nothing to a stranger.
    if not user.is_active:
        form.error("_form", ctx.gettext("This account is not activated yet: follow the link in the activation mail."))
        return ctx.render("login.html", status=403, form=form)
    if not user.is_approved:
        form.error("_form", ctx.gettext("This account waits for an administrator's approval."))
        return ctx.render("login.html", status=403, form=form)
    if user.is_disabled:
        form.error("_form", ctx.gettext("This account is disabled."))
        return ctx.render("login.html", status=403, form=form)
    remember = form["remember"] == "1"
    target = safe_next(form["next"])
    if user.totp_secret:
        ctx.start_session(user, remember=remember, mfa_pending=True)
        return ctx.redirect("/login/totp?next=" + bottle.urlquote(target, safe="/"))
    ctx.start_session(user, remember=remember)
    limits.trust_device(ctx, user)
    users.record_login(ctx.db, user.id, ok=True)
    ctx.site.metrics.login(True)
    return ctx.redirect(target)


def totp_page(ctx: Context) -> str:
    if not ctx.mfa_pending:
        return ctx.redirect("/login")
    return ctx.render("login_totp.html", form=Form({"next": ctx.query("next")}))


def totp_login(ctx: Context) -> str:
    if not ctx.mfa_pending or ctx.session is None:
        return ctx.redirect("/login")
    form = Form.from_request(ctx, "code", "next")
    user = users.get(ctx.db, ctx.session.user_id)
    guard = limits.login_guard(ctx, user.username, user)
    if guard.blocked(ctx):
        return _too_many(ctx, form, "login_totp.html")
    step = totp.matching_step(user.totp_secret or "", form["code"])
    if step is None or not accounts.use_totp_step(ctx.db, user.id, step):
        # A code used before (replayed, or typed twice) is refused like a wrong one.
        guard.failed(ctx)
        ctx.site.metrics.login(False)
        form.error("code", ctx.gettext("This code is not right. Use the current code of your authenticator app."))
        return ctx.render("login_totp.html", status=401, form=form)
    ctx.start_session(user, remember=ctx.session.remember)
    limits.trust_device(ctx, user)
    users.record_login(ctx.db, user.id, ok=True)
    ctx.site.metrics.login(True)
    return ctx.redirect(safe_next(form["next"]))


def logout(ctx: Context) -> str:
    ctx.end_session()
    return ctx.redirect("/", ctx.gettext("You are logged out."))


# -- sign-up and activation ------------------------------------------------------------------------


def _captcha_ok(ctx: Context) -> bool:
    details = captcha.info(ctx.config.captcha)
    if details is None:
        return True
    return captcha.verify(ctx.config.captcha, ctx.form(details.field), ctx.client)


def signup_page(ctx: Context) -> str:
    if ctx.config.signup.mode == "manual":
        return ctx.render("signup_closed.html")
    return ctx.render("signup.html", form=Form())


def _email_allowed(ctx: Context, email: str) -> bool:
    allowed = [d.lower().strip(".") for d in ctx.config.signup.allowed_email_domains]
    if not allowed:
        return True
    domain = email.rpartition("@")[2]
    return any(domain == d or domain.endswith("." + d) for d in allowed)


def signup(ctx: Context) -> str:
    mode = ctx.config.signup.mode
    if mode == "manual":
        return ctx.render("signup_closed.html", status=403)
    form = Form.from_request(ctx, "username", "email", "password", "password2", secret=("password", "password2"))
    # "This name is taken" tells whether an account exists: such answers count as failed logins.
    names = limits.address_guard(ctx)
    if limits.mail_blocked(ctx) or names.blocked(ctx):
        return _too_many(ctx, form, "signup.html")
    username = form.check("username", validate.username)
    email = form.check("email", validate.email)
    if email and not _email_allowed(ctx, email):
        form.error(
            "email",
            ctx.gettext(
                "Sign-up is open to addresses in these domains only: %(domains)s",
                domains=", ".join(ctx.config.signup.allowed_email_domains),
            ),
        )
    problem = password_problem(ctx, form["password"], form["password2"])
    if problem:
        form.error("password", problem)
    if form.ok and not _captcha_ok(ctx):
        form.error("captcha", ctx.gettext("The captcha was not solved. Please try again."))
    if not form.ok:
        return ctx.render("signup.html", status=400, form=form)
    assert username and email
    limits.mail_requested(ctx)
    try:
        user = users.add(
            ctx.db,
            username,
            email,
            password_hash=passwords.hash_password(form["password"]),
            is_active=False,
            is_approved=mode == "automatic",
            language=ctx.lang,
        )
    except Conflict:
        existing = users.find_login(ctx.db, username)
        if existing is not None and existing.username == username:
            names.failed(ctx)
            form.error("username", ctx.gettext("This name is taken; choose another."))
            return ctx.render("signup.html", status=400, form=form)
        # The address has an account: say the same as for a new one, and tell the owner instead (off the
        # request, as the activation mail is: the answer takes as long either way).
        site, catalog, subject = ctx.site, ctx.translations, ctx.gettext("Sign-up attempt")

        def job() -> None:
            deliver(site, catalog, email, subject, "signup_exists", username=username)

        later(ctx, job)
        return ctx.render("signup_done.html", email=email)
    ctx.site.metrics.signup()
    later(ctx, _activation_job(ctx, user, email, mode))
    return ctx.render("signup_done.html", email=email)


def _activation_job(ctx: Context, user: users.User, email: str, mode: str) -> Callable[[], None]:
    site, catalog, client = ctx.site, ctx.translations, ctx.client
    subject, lifetime = ctx.gettext("Activate your account"), ctx.config.auth.token_lifetime

    def job() -> None:
        token = tokens.create(site.db, ACTIVATION, user.id, lifetime, replace=True)
        events.add(site.db, "account", f"user {user.username}", client=client, detail=f"signed up ({mode})")
        deliver(site, catalog, email, subject, "activation", user=user, token=token)

    return job


def activate_page(ctx: Context, token: str) -> str:
    found = tokens.check(ctx.db, ACTIVATION, token)
    return ctx.render("activate.html", token=token, valid=found is not None)


def activate(ctx: Context, token: str) -> str:
    found = tokens.consume(ctx.db, ACTIVATION, token)
    if found is None or found.user_id is None:
        return ctx.render("activate.html", token=token, valid=False, status=400)
    try:
        user = users.set_flags(ctx.db, found.user_id, is_active=True)
    except NotFound:
        return ctx.render("activate.html", token=token, valid=False, status=400)
    ctx.log_event("account", f"user {user.username}", "activated")
    if not user.is_approved:
        for admin in accounts.admins(ctx.db):
            send_mail(ctx, admin.email, ctx.gettext("A new account waits for approval"), "approval", user=user)
    return ctx.render("activated.html", user=user)


# -- lost password ---------------------------------------------------------------------------------


def forgot_page(ctx: Context) -> str:
    return ctx.render("forgot.html", form=Form())


def forgot(ctx: Context) -> str:
    form = Form.from_request(ctx, "login")
    if limits.mail_blocked(ctx):
        return _too_many(ctx, form, "forgot.html")
    if not form["login"]:
        form.error("login", ctx.gettext("Give your user name or e-mail address."))
        return ctx.render("forgot.html", status=400, form=form)
    limits.mail_requested(ctx)
    site, catalog, login = ctx.site, ctx.translations, form["login"]
    subject, lifetime = ctx.gettext("Set a new password"), ctx.config.auth.token_lifetime

    def job() -> None:
        user = users.find_login(site.db, login)
        if user is not None and user.is_active and not user.is_disabled:
            token = tokens.create(site.db, RESET, user.id, lifetime, replace=True)
            deliver(site, catalog, user.email, subject, "reset", user=user, token=token)

    # The same answer, after the same work, whether or not the account exists: the rest is done later.
    later(ctx, job)
    return ctx.render("forgot_sent.html")


def reset_page(ctx: Context, token: str) -> str:
    found = tokens.check(ctx.db, RESET, token)
    return ctx.render("reset.html", form=Form(), token=token, valid=found is not None)


def reset(ctx: Context, token: str) -> str:
    form = Form.from_request(ctx, "password", "password2", secret=("password", "password2"))
    if tokens.check(ctx.db, RESET, token) is None:
        return ctx.render("reset.html", form=form, token=token, valid=False, status=400)
    problem = password_problem(ctx, form["password"], form["password2"])
    if problem:
        form.error("password", problem)
        return ctx.render("reset.html", form=form, token=token, valid=True, status=400)
    found = tokens.consume(ctx.db, RESET, token)
    if found is None or found.user_id is None:
        return ctx.render("reset.html", form=form, token=token, valid=False, status=400)
    users.set_password_hash(ctx.db, found.user_id, passwords.hash_password(form["password"]))
    sessions.delete_for_user(ctx.db, found.user_id)
    ctx.end_session()
    user = users.get(ctx.db, found.user_id)
    ctx.log_event("account", f"user {user.username}", "password reset by mail")
    return ctx.redirect("/login", ctx.gettext("Your password is set. Log in with it."))


# -- the account page ------------------------------------------------------------------------------


def _account(ctx: Context, status: int = 200, **forms: Any) -> str:
    assert ctx.user is not None
    values = {
        "password_form": Form(),
        "email_form": Form({"email": ""}),
        "delete_form": Form(),
        "totp_form": Form(),
    }
    values.update(forms)
    has_token = bool(tokens.for_user(ctx.db, ctx.user.id, UPDATE))
    return ctx.render("account.html", status=status, has_update_token=has_token, **values)


def account_page(ctx: Context) -> str:
    return _account(ctx)


def _check_password(ctx: Context, form: Form, name: str = "current") -> bool:
    assert ctx.user is not None
    user = users.get(ctx.db, ctx.user.id)
    # Counted per session: a logged-in user is not held by failures of others.
    guard = limits.session_guard(ctx)
    if guard.blocked(ctx):
        form.error(name, ctx.gettext("Too many attempts. Wait a few minutes and try again."))
        return False
    if not passwords.verify_password(form[name], user.password_hash).ok:
        guard.failed(ctx)
        form.error(name, ctx.gettext("This is not your current password."))
        return False
    return True


def change_password(ctx: Context) -> str:
    assert ctx.user is not None and ctx.session is not None
    form = Form.from_request(ctx, "current", "password", "password2", secret=("current", "password", "password2"))
    if _check_password(ctx, form):
        problem = password_problem(ctx, form["password"], form["password2"])
        if problem:
            form.error("password", problem)
    if not form.ok:
        return _account(ctx, 400, password_form=form)
    users.set_password_hash(ctx.db, ctx.user.id, passwords.hash_password(form["password"]))
    ended = sessions.delete_for_user(ctx.db, ctx.user.id, keep=ctx.session.id)
    ctx.log_event("account", f"user {ctx.user.username}", f"password changed; {ended} other sessions ended")
    return ctx.redirect("/account", ctx.gettext("Your password is changed. Your other sessions are logged out."))


def change_email(ctx: Context) -> str:
    assert ctx.user is not None
    form = Form.from_request(ctx, "email", "current", secret=("current",))
    email = form.check("email", validate.email)
    if email and email == ctx.user.email:
        form.error("email", ctx.gettext("This is your address already."))
    _check_password(ctx, form)
    if not form.ok:
        return _account(ctx, 400, email_form=form)
    assert email
    token = tokens.create(ctx.db, EMAIL, ctx.user.id, ctx.config.auth.token_lifetime, payload=email, replace=True)
    send_mail(ctx, email, ctx.gettext("Confirm your new e-mail address"), "email_change", user=ctx.user, token=token)
    return ctx.redirect(
        "/account",
        ctx.gettext("We sent a link to %(email)s. Your address changes when you follow it.", email=email),
    )


def confirm_email_page(ctx: Context, token: str) -> str:
    found = tokens.check(ctx.db, EMAIL, token)
    return ctx.render("confirm_email.html", token=token, valid=found is not None, email=found.payload if found else "")


def confirm_email(ctx: Context, token: str) -> str:
    found = tokens.consume(ctx.db, EMAIL, token)
    if found is None or found.user_id is None or not found.payload:
        return ctx.render("confirm_email.html", token=token, valid=False, email="", status=400)
    try:
        users.set_email(ctx.db, found.user_id, found.payload)
    except Conflict:
        return ctx.render("confirm_email.html", token=token, valid=False, email="", status=409)
    user = users.get(ctx.db, found.user_id)
    ctx.log_event("account", f"user {user.username}", "e-mail address changed")
    return ctx.redirect("/account" if ctx.user else "/login", ctx.gettext("Your e-mail address is changed."))


def delete_page(ctx: Context) -> str:
    assert ctx.user is not None
    from ddserver.store import hosts

    return ctx.render("account_delete.html", form=Form(), host_count=hosts.count_for_user(ctx.db, ctx.user.id))


def delete_account(ctx: Context) -> str:
    assert ctx.user is not None
    from ddserver.store import hosts, retention

    form = Form.from_request(ctx, "current", secret=("current",))
    if not _check_password(ctx, form):
        count = hosts.count_for_user(ctx.db, ctx.user.id)
        return ctx.render("account_delete.html", status=400, form=form, host_count=count)
    try:
        # The audit entry of the deletion is written by the store, under a pseudonym: nothing names the account.
        retention.delete_account(ctx.db, ctx.user.id)
    except LimitReached:
        form.error("_form", ctx.gettext("You are the last administrator: make another user admin first."))
        return ctx.render("account_delete.html", status=409, form=form, host_count=0)
    ctx.end_session()
    return ctx.redirect("/", ctx.gettext("Your account and its hosts are deleted."))


def set_language(ctx: Context) -> str:
    lang = ctx.form("language")
    if lang not in LANGUAGES:
        return ctx.redirect("/")
    ctx.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400)
    if ctx.user is not None:
        users.set_language(ctx.db, ctx.user.id, lang)
    return ctx.redirect(safe_next(ctx.form("next"), "/"))


# -- second factor ---------------------------------------------------------------------------------


def totp_setup_page(ctx: Context) -> str:
    assert ctx.user is not None and ctx.session is not None
    if ctx.user.totp_secret:
        return ctx.redirect("/account")
    secret = ctx.session.data.get("totp_setup") or totp.new_secret()
    if ctx.session.data.get("totp_setup") != secret:
        ctx.session.data["totp_setup"] = secret
        sessions.save_data(ctx.db, ctx.session.id, ctx.session.data)
    uri = totp.uri(secret, ctx.user.username, ctx.config.interface.site_name)
    return ctx.render("totp_setup.html", form=Form(), secret=secret, uri=uri)


def totp_enable(ctx: Context) -> str:
    assert ctx.user is not None and ctx.session is not None
    secret = ctx.session.data.get("totp_setup")
    if not secret:
        return ctx.redirect("/account/totp")
    form = Form.from_request(ctx, "code")
    step = totp.matching_step(secret, form["code"])
    if step is None:
        form.error("code", ctx.gettext("This code is not right. Check the clock of your device and try again."))
        uri = totp.uri(secret, ctx.user.username, ctx.config.interface.site_name)
        return ctx.render("totp_setup.html", status=400, form=form, secret=secret, uri=uri)
    # The setup code is spent: it cannot log in afterwards.
    accounts.set_totp(ctx.db, ctx.user.id, secret, step)
    ctx.session.data.pop("totp_setup", None)
    sessions.save_data(ctx.db, ctx.session.id, ctx.session.data)
    ctx.log_event("account", f"user {ctx.user.username}", "second factor enabled")
    return ctx.redirect("/account", ctx.gettext("The second factor is on: logins now ask for a code."))


def totp_disable(ctx: Context) -> str:
    assert ctx.user is not None
    form = Form.from_request(ctx, "current", "code", secret=("current",))
    if _check_password(ctx, form):
        step = totp.matching_step(ctx.user.totp_secret or "", form["code"])
        if step is None or not accounts.use_totp_step(ctx.db, ctx.user.id, step):
            form.error("code", ctx.gettext("This code is not right."))
    if not form.ok:
        return _account(ctx, 400, totp_form=form)
    accounts.set_totp(ctx.db, ctx.user.id, None, None)
    ctx.log_event("account", f"user {ctx.user.username}", "second factor disabled")
    return ctx.redirect("/account", ctx.gettext("The second factor is off."))


def change_password_redirect(ctx: Context) -> str:
    return ctx.redirect("/account#password")


def register(app: bottle.Bottle) -> None:
    user = {"auth": AuthLevel.USER}
    app.route("/login", "GET", login_page)
    app.route("/login", "POST", login)
    app.route("/login/totp", "GET", totp_page)
    app.route("/login/totp", "POST", totp_login)
    app.route("/logout", "POST", logout)
    app.route("/signup", "GET", signup_page)
    app.route("/signup", "POST", signup)
    app.route("/activate/<token>", "GET", activate_page)
    app.route("/activate/<token>", "POST", activate)
    app.route("/password/forgot", "GET", forgot_page)
    app.route("/password/forgot", "POST", forgot)
    app.route("/password/reset/<token>", "GET", reset_page)
    app.route("/password/reset/<token>", "POST", reset)
    app.route("/email/confirm/<token>", "GET", confirm_email_page)
    app.route("/email/confirm/<token>", "POST", confirm_email)
    app.route("/language", "POST", set_language)
    app.route("/.well-known/change-password", "GET", change_password_redirect)
    app.route("/account", "GET", account_page, **user)
    app.route("/account/password", "POST", change_password, **user)
    app.route("/account/email", "POST", change_email, **user)
    app.route("/account/delete", "GET", delete_page, **user)
    app.route("/account/delete", "POST", delete_account, **user)
    app.route("/account/totp", "GET", totp_setup_page, **user)
    app.route("/account/totp", "POST", totp_enable, **user)
    app.route("/account/totp/disable", "POST", totp_disable, **user)
