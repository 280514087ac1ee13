"""Sign-in, sign-out, password change and the language switch."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect

from optria.identity import passwords
from optria.identity.auth import login as do_login
from optria.identity.auth import SESSION_USER_KEY, safe_next
from optria.identity.guards import PUBLIC, requires
from optria.identity.rbac import Permission
from optria.identity.sso_providers import login_options
from optria.identity.store import IdentityStore
from optria.web import i18n
from optria.web.request_context import client_addr
from optria.web.templating import render

log = logging.getLogger("optria.identity")


class LoginForm(msgspec.Struct):
    username: str = ""
    password: str = ""
    organization: str = ""
    next: str = "/"


class PasswordForm(msgspec.Struct):
    current_password: str = ""
    new_password: str = ""
    confirm_password: str = ""


class LangForm(msgspec.Struct):
    lang: str = "ar"
    next: str = "/"


Form = Annotated[Any, Body(media_type=RequestEncodingType.URL_ENCODED)]


def _store(request: Request) -> IdentityStore:
    return request.app.state.identity


def _home_for(user: Any) -> str:
    return "/platform" if user.is_platform_owner else "/"


@get("/login", opt=PUBLIC, name="login_page")
async def login_page(request: Request, next: FromQuery[str] = "/", org: FromQuery[str] = "") -> Response:
    user = request.scope.get("user")
    if user is not None:
        return Redirect(safe_next(next, _home_for(user)))
    options = await login_options(request.app.state.db, _store(request), org)
    return render(request, "auth/login.html", next=safe_next(next), organization=org, username="", error=None,
                  sso_providers=options)


@post("/login", opt=PUBLIC, name="login_submit")
async def login_submit(request: Request, data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    old = request.session.get(SESSION_USER_KEY) if request.session else None
    outcome = await do_login(_store(request), organization=data.organization[:64], login_name=data.username[:254],
                             password=data.password[:512], addr=client_addr(request),
                             user_agent=request.headers.get("user-agent", ""), previous_session=old)
    if outcome.session is None:
        options = await login_options(request.app.state.db, _store(request), data.organization)
        return render(request, "auth/login.html", status_code=401, next=safe_next(data.next),
                      organization=data.organization, username=data.username,
                      error=i18n.gettext(outcome.error or "Sign-in failed."), sso_providers=options)
    request.set_session({SESSION_USER_KEY: outcome.session})
    if outcome.must_change_password:
        return Redirect("/account/password")
    user = await _store(request).session_user(outcome.session)
    return Redirect(safe_next(data.next if data.next != "/" else None, _home_for(user)))


@post("/logout", guards=[requires(Permission.AUTHENTICATED)], name="logout")
async def logout(request: Request) -> Response:
    sid = request.session.get(SESSION_USER_KEY) if request.session else None
    if sid:
        await _store(request).revoke_session(sid)
    request.clear_session()
    return Redirect("/login")


@get("/account/password", guards=[requires(Permission.AUTHENTICATED)], name="password_page")
async def password_page(request: Request) -> Response:
    return render(request, "auth/password.html", errors=[], rules=passwords.RULES_TEXT, done=False)


@post("/account/password", guards=[requires(Permission.AUTHENTICATED)], name="password_submit")
async def password_submit(request: Request, data: Annotated[PasswordForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    user = request.scope["user"]
    store = _store(request)
    errors: list[str] = []
    if user.auth_source != "local":
        errors.append("This account signs in with your organization's single sign-on.")
    elif not await asyncio.to_thread(passwords.verify_password, await store.password_hash(user.id),
                                     data.current_password):
        errors.append("The current password is incorrect.")
    if data.new_password != data.confirm_password:
        errors.append("The new passwords do not match.")
    if data.new_password == data.current_password:
        errors.append("Choose a password different from the current one.")
    errors += passwords.password_problems(data.new_password, username=user.username)
    if errors:
        return render(request, "auth/password.html", status_code=422, errors=[i18n.gettext(e) for e in errors],
                      rules=passwords.RULES_TEXT, done=False)
    new_hash = await asyncio.to_thread(passwords.hash_password, data.new_password)  # argon2: off the event loop
    ended = await store.set_password(user.id, new_hash, must_change=False, keep_session=user.session_id)
    log.info("auth.password_changed", extra={"user_id": str(user.id), "other_sessions_ended": ended})
    return Redirect(_home_for(user))


@post("/lang", opt=PUBLIC, name="set_language")
async def set_language(data: Annotated[LangForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    lang = data.lang if data.lang in i18n.LANGUAGES else i18n.DEFAULT_LANG
    response = Redirect(safe_next(data.next))
    response.set_cookie("lang", lang, max_age=365 * 24 * 3600, httponly=False, samesite="lax")
    return response


ROUTES = [login_page, login_submit, logout, password_page, password_submit, set_language]
