"""Single sign-on: the sign-in flow (start, callback) and the tenant admin's identity provider pages.

Flow: ``GET /sso/{org}/{provider_id}`` looks up an enabled provider of that organization,
creates state, nonce and a PKCE verifier, keeps them in the encrypted session cookie
(bound to this browser, at most a few pending at once, ten minutes each) and redirects to
the provider. ``GET /sso/callback`` consumes the pending entry named by ``state`` (a wrong
or replayed state is refused), exchanges the code with the verifier, validates the ID token
(sso.py), finds or provisions the account (sso_accounts.py) and starts a fresh session —
the same rotation as a password sign-in. Every failure shows the organization's sign-in page
with a message saying what to do; tokens and secrets are never logged.

The redirect URI to register with a provider is ``<site>/sso/callback``; it is shown on the
admin pages.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect

from optria.identity import sso_accounts, sso_providers
from optria.identity.auth import SESSION_USER_KEY, safe_next
from optria.identity.guards import PUBLIC, requires
from optria.identity.rbac import TENANT_ROLES, Permission
from optria.identity.sso import PENDING_TTL_S, OidcClient, OidcError
from optria.identity.sso_providers import ProviderInput
from optria.identity.users import UserError
from optria.secretbox import SecretBoxError
from optria.web import flash, i18n
from optria.web.errors import ApiError
from optria.web.request_context import client_addr
from optria.web.templating import render
from optria.web.i18n import verbatim

log = logging.getLogger("optria.identity.sso")

PENDING_KEY = "sso_pending"
OUTCOMES_KEY = "sso_outcomes"   # refused answers by state, so a reload repeats the refusal
MAX_PENDING = 3

M_STATE = "This sign-in answer is not valid for this browser or was already used. Start the sign-in again."
M_EXPIRED = "The sign-in took too long. Start it again."
M_DENIED = "The identity provider did not complete the sign-in. Try again, or sign in another way."
M_UNAVAILABLE = "This sign-in option is not available. Choose another way to sign in, or ask your administrator."
M_MISCONFIGURED = "Single sign-on for this organization is not configured correctly. Ask your administrator."
M_SAVED = "The identity provider was saved."
M_TESTED = "Discovery works: the provider answered with issuer %(issuer)s."
MESSAGES = (M_STATE, M_EXPIRED, M_DENIED, M_UNAVAILABLE, M_MISCONFIGURED, M_SAVED, M_TESTED)


def oidc_client(request: Request) -> OidcClient:
    """One client per app, so discovery documents and key sets are cached across requests."""
    client = request.app.state.get("oidc")
    if client is None:
        client = OidcClient(production=request.app.state.settings.is_production)
        request.app.state.oidc = client
    return client


def redirect_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/sso/callback"


async def render_login(request: Request, *, organization: str, error: str, status: int, next: str = "/") -> Response:
    """The organization's sign-in page with a message (the same page a password failure shows)."""
    options = await sso_providers.login_options(request.app.state.db, request.app.state.identity, organization)
    return render(request, "auth/login.html", status_code=status, next=safe_next(next), organization=organization,
                  username="", error=i18n.gettext(error), sso_providers=options)


# -- the sign-in flow --------------------------------------------------------------------------

@get("/sso/{org:str}/{provider_id:int}", opt=PUBLIC, name="sso_start")
async def sso_start(request: Request, org: FromPath[str], provider_id: FromPath[int],
                    next: FromQuery[str] = "/") -> Response:
    """Send the browser to the provider, with state, nonce and a PKCE S256 challenge."""
    org = org.strip().lower()[:64]
    tenant = await request.app.state.identity.tenant_by_slug(org)
    provider = None
    if tenant is not None and tenant["is_active"]:
        provider = await sso_providers.provider_for_login(request.app.state.db, request.app.state.secretbox,
                                                          tenant["id"], provider_id)
    if provider is None:
        return await render_login(request, organization=org, error=M_UNAVAILABLE, status=404, next=next)
    oidc = oidc_client(request)
    try:
        meta = await oidc.discover(provider["discovery_url"])
    except OidcError as exc:
        log.warning("sso.start_failed", extra={"tenant_id": str(tenant["id"]), "provider_id": provider_id,
                                               "reason": exc.reason})
        return await render_login(request, organization=org, error=exc.message, status=503, next=next)
    auth = oidc.authorization_request(meta, client_id=provider["client_id"], redirect_uri=redirect_uri(request))
    session = dict(request.session or {})
    pending = dict(session.get(PENDING_KEY) or {})
    pending[auth.state] = {"tenant_id": str(tenant["id"]), "org": org, "provider_id": provider_id,
                           "nonce": auth.nonce, "verifier": auth.code_verifier, "next": safe_next(next),
                           "t": int(time.time())}
    # keep the newest few (several tabs may sign in at once); older ones simply expire
    session[PENDING_KEY] = dict(sorted(pending.items(), key=lambda kv: kv[1]["t"])[-MAX_PENDING:])
    request.set_session(session)
    return Redirect(auth.url)


def _remember_outcome(request: Request, state: str, org: str, error: str, status: int, next_path: str) -> None:
    """Keep a refused answer's outcome for its state a while, so reloading the page says the same thing
    (not "this answer is not valid") without the code being used twice."""
    session = dict(request.session or {})
    outcomes = {k: v for k, v in dict(session.get(OUTCOMES_KEY) or {}).items() if time.time() - v["t"] < PENDING_TTL_S}
    outcomes[state[:100]] = {"org": org, "error": error, "status": status, "next": next_path, "t": int(time.time())}
    session[OUTCOMES_KEY] = dict(sorted(outcomes.items(), key=lambda kv: kv[1]["t"])[-MAX_PENDING:])
    request.set_session(session)


@get("/sso/callback", opt=PUBLIC, name="sso_callback")
async def sso_callback(request: Request, oidc_state: Annotated[str, QueryParameter(name="state")] = "",
                       code: FromQuery[str] = "", error: FromQuery[str] = "", iss: FromQuery[str] = "") -> Response:
    """The provider's answer: check state and the answer's issuer (RFC 9207), exchange the code, validate
    the ID token, sign in. A refusal is remembered for its state, so a reload shows it again."""
    session = dict(request.session or {})
    pending = dict(session.get(PENDING_KEY) or {})
    entry = pending.pop(oidc_state, None) if oidc_state else None
    session[PENDING_KEY] = pending
    request.set_session(session)  # the entry is used up whatever happens next
    if entry is None:
        seen = dict(session.get(OUTCOMES_KEY) or {}).get(oidc_state[:100]) if oidc_state else None
        if seen is not None and time.time() - seen["t"] < PENDING_TTL_S:   # a reload of a refused answer
            return await render_login(request, organization=seen["org"], error=seen["error"], status=seen["status"],
                                      next=seen["next"])
        log.info("sso.bad_state", extra={"client": client_addr(request)})
        return await render_login(request, organization="", error=M_STATE, status=400)
    org, next_path = entry["org"], entry["next"]

    async def refuse(message: str, status: int) -> Response:
        _remember_outcome(request, oidc_state, org, message, status, next_path)
        return await render_login(request, organization=org, error=message, status=status, next=next_path)

    if time.time() - entry["t"] > PENDING_TTL_S:
        return await refuse(M_EXPIRED, 400)
    if error or not code:
        log.info("sso.denied", extra={"provider_id": entry["provider_id"], "error": error[:100]})
        return await refuse(M_DENIED, 401)
    db, identity = request.app.state.db, request.app.state.identity
    tenant_id = UUID(entry["tenant_id"])
    tenant = await identity.tenant_by_slug(org)
    try:
        provider = None
        if tenant is not None and tenant["is_active"] and tenant["id"] == tenant_id:
            provider = await sso_providers.provider_for_login(db, request.app.state.secretbox, tenant_id,
                                                              entry["provider_id"], open_secret=True)
    except SecretBoxError:
        log.error("sso.secret_unreadable", extra={
            "tenant_id": str(tenant_id), "provider_id": entry["provider_id"],
            "action": "SESSION_SECRET changed: run `optria rotate-secret` with the old secret, or enter the "
                      "identity provider's client secret again"})
        return await refuse(M_MISCONFIGURED, 503)
    if provider is None:
        return await refuse(M_UNAVAILABLE, 404)
    oidc = oidc_client(request)
    try:
        meta = await oidc.discover(provider["discovery_url"])
        oidc.check_response_issuer(meta, iss[:500] or None)
        tokens = await oidc.exchange_code(meta, code=code[:2000], redirect_uri=redirect_uri(request),
                                          code_verifier=entry["verifier"], client_id=provider["client_id"],
                                          client_secret=provider["client_secret"])
        claims = await oidc.validate_id_token(meta, tokens["id_token"], client_id=provider["client_id"],
                                              nonce=entry["nonce"], allowed_tenant_ids=provider["allowed_tenant_ids"])
        account = await sso_accounts.sign_in(db, provider, claims)
    except OidcError as exc:
        log.warning("sso.failed", extra={"tenant_id": str(tenant_id), "provider_id": provider["id"],
                                         "reason": exc.reason, "client": client_addr(request)})
        return await refuse(exc.message, 401)
    except sso_accounts.AccountRefused as exc:
        log.info("sso.refused", extra={"tenant_id": str(tenant_id), "provider_id": provider["id"],
                                       "reason": exc.reason})
        return await refuse(exc.message, 403)
    old = session.get(SESSION_USER_KEY)
    sid = await identity.start_session(account.id, account.tenant_id, client_addr(request),
                                       request.headers.get("user-agent", ""), replaces=old)
    request.set_session({SESSION_USER_KEY: sid})
    log.info("sso.login", extra={"tenant_id": str(tenant_id), "user_id": str(account.id), "role": account.role,
                                 "provider_id": provider["id"], "provisioned": account.created})
    return Redirect(safe_next(next_path, "/"))


# -- admin pages -----------------------------------------------------------------------------------

class ProviderForm(msgspec.Struct):
    name: str = ""
    discovery_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    allowed_email_domains: str = ""
    allowed_tenant_ids: str = ""
    default_role: str = "viewer"
    role_claim: str = ""
    role_map: str = ""
    enabled: str = ""

    def to_input(self) -> ProviderInput:
        return ProviderInput(name=self.name[:200], discovery_url=self.discovery_url[:600], client_id=self.client_id[:300],
                             client_secret=self.client_secret[:2000],
                             allowed_email_domains=self.allowed_email_domains[:4000],
                             allowed_tenant_ids=self.allowed_tenant_ids[:4000], default_role=self.default_role,
                             role_claim=self.role_claim[:200], role_map=self.role_map[:8000],
                             enabled=self.enabled in ("on", "true", "1", "yes"))


FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
BREADCRUMBS = [("Users", "/management/users"), ("Single sign-on", "/management/sso")]


def _values_from_row(row: dict[str, Any]) -> dict[str, Any]:
    claim, lines = sso_providers.role_map_text(row.get("role_mapping"))
    return {"name": row["name"], "discovery_url": row["discovery_url"], "client_id": row["client_id"],
            "allowed_email_domains": ", ".join(row["allowed_email_domains"] or []),
            "allowed_tenant_ids": ", ".join(row["allowed_tenant_ids"] or []), "default_role": row["default_role"],
            "role_claim": claim, "role_map": lines, "enabled": row["enabled"]}


def _values_from_form(data: ProviderForm) -> dict[str, Any]:
    values = {f: getattr(data, f) for f in ("name", "discovery_url", "client_id", "allowed_email_domains",
                                             "allowed_tenant_ids", "default_role", "role_claim", "role_map")}
    values["enabled"] = data.enabled in ("on", "true", "1", "yes")
    return values  # the secret is never echoed back into the form


def _form_page(request: Request, *, provider: dict[str, Any] | None, values: dict[str, Any],
               errors: dict[str, list[str]] | None = None, status: int = 200,
               note: dict[str, str] | None = None) -> Response:
    title = verbatim(provider["name"]) if provider else "Add identity provider"
    return render(request, "management/sso_form.html", status_code=status, provider=provider, values=values,
                  errors={k: [i18n.gettext(m) for m in v] for k, v in (errors or {}).items()},
                  roles=[r.value for r in TENANT_ROLES], redirect_uri=redirect_uri(request), flash=note,
                  breadcrumbs=[*BREADCRUMBS, (title, None)])


async def _provider_or_404(request: Request, provider_id: int) -> dict[str, Any]:
    """The provider of the admin's own tenant, or a 404 page (another tenant's id is simply not found)."""
    try:
        return await sso_providers.get_provider(request.app.state.db, request.scope["user"], provider_id)
    except UserError as err:
        raise ApiError(404, "not_found", err.message) from None


@get("/management/sso", guards=[requires(Permission.MANAGE_USERS)], name="sso_providers_page")
async def sso_providers_page(request: Request) -> Response:
    user = request.scope["user"]
    providers = await sso_providers.list_providers(request.app.state.db, user, request.app.state.secretbox)
    note, _ = flash.pop(request)
    login_url = f"{str(request.base_url).rstrip('/')}/login?org={user.tenant_slug}"
    return render(request, "management/sso.html", providers=providers, redirect_uri=redirect_uri(request),
                  login_url=login_url, flash=note, breadcrumbs=BREADCRUMBS)


@get("/management/sso/new", guards=[requires(Permission.MANAGE_USERS)], name="sso_provider_new")
async def sso_provider_new(request: Request) -> Response:
    values = {"name": "", "discovery_url": "", "client_id": "", "allowed_email_domains": "", "allowed_tenant_ids": "",
              "default_role": "viewer", "role_claim": "", "role_map": "", "enabled": True}
    return _form_page(request, provider=None, values=values)


@post("/management/sso", guards=[requires(Permission.MANAGE_USERS)], name="sso_provider_create")
async def sso_provider_create(request: Request, data: Annotated[ProviderForm, FormBody]) -> Response:
    """Create a provider after a successful discovery test; on any error nothing is saved."""
    try:
        await sso_providers.create_provider(request.app.state.db, oidc_client(request), request.app.state.secretbox,
                                            request.scope["user"], data.to_input(), addr=client_addr(request))
    except UserError as err:
        return _form_page(request, provider=None, values=_values_from_form(data), errors=err.errors, status=422)
    flash.push(request, "success", M_SAVED)
    return Redirect("/management/sso")


@get("/management/sso/{provider_id:int}", guards=[requires(Permission.MANAGE_USERS)], name="sso_provider_edit")
async def sso_provider_edit(request: Request, provider_id: FromPath[int]) -> Response:
    row = await _provider_or_404(request, provider_id)
    note, _ = flash.pop(request)
    return _form_page(request, provider=row, values=_values_from_row(row), note=note)


@post("/management/sso/{provider_id:int}", guards=[requires(Permission.MANAGE_USERS)], name="sso_provider_update")
async def sso_provider_update(request: Request, provider_id: FromPath[int],
                              data: Annotated[ProviderForm, FormBody]) -> Response:
    """Save changes; an empty client secret keeps the stored one. Discovery is re-tested while enabled."""
    row = await _provider_or_404(request, provider_id)
    try:
        await sso_providers.update_provider(request.app.state.db, oidc_client(request), request.app.state.secretbox,
                                            request.scope["user"], provider_id, data.to_input(),
                                            addr=client_addr(request))
    except UserError as err:
        if err.status == 404:
            raise ApiError(404, "not_found", err.message) from None
        return _form_page(request, provider=row, values=_values_from_form(data), errors=err.errors, status=422)
    flash.push(request, "success", M_SAVED)
    return Redirect("/management/sso")


@post("/management/sso/{provider_id:int}/test", guards=[requires(Permission.MANAGE_USERS)], name="sso_provider_test")
async def sso_provider_test(request: Request, provider_id: FromPath[int]) -> Response:
    """Fetch discovery and keys now and say what happened (nothing else changes)."""
    await _provider_or_404(request, provider_id)
    try:
        meta = await sso_providers.test_provider(request.app.state.db, oidc_client(request), request.scope["user"],
                                                 provider_id)
    except OidcError as exc:
        log.info("sso.test_failed", extra={"provider_id": provider_id, "reason": exc.reason})
        flash.push(request, "error", exc.message)
    else:
        flash.push(request, "success", M_TESTED, issuer=meta.issuer)
    return Redirect(f"/management/sso/{provider_id}")


ROUTES = [sso_start, sso_callback, sso_providers_page, sso_provider_new, sso_provider_create, sso_provider_edit,
          sso_provider_update, sso_provider_test]
