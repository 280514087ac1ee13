"""Per-tenant OpenID Connect sign-in, end to end against real providers started by the test.

The browser side is the Litestar test client; the provider side is real HTTP: the
``oidc-provider-mock`` package, or the small joserfc/aiohttp provider in tests/fix_oidc.py for
Entra-style claims, PKCE checking and deliberately broken tokens.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from optria.identity import sso as sso_mod
from optria.identity.sso import OidcClient, OidcError, discovery_document_url, pkce_challenge
from optria.identity.sso_accounts import verified_email
from tests.fix_oidc import ENTRA_TID, OTHER_TID, app_path, query_of, sso_login, sso_start
from tests.fix_web import Web, new_web


async def add_provider(admin: Web, **fields: Any):
    data = {"name": "Acme SSO", "client_id": "optria-client", "client_secret": "s3cret-Value~with.chars",
            "default_role": "viewer", "enabled": "on", **fields}
    return await admin.post_form("/management/sso", data)


def provider_id(owner_conn, tenant_id, name: str = "Acme SSO") -> int:
    row = owner_conn.execute("SELECT id FROM identity_providers WHERE tenant_id = %s AND name = %s",
                             [tenant_id, name]).fetchone()
    assert row, f"provider {name} not saved"
    return row[0]


async def setup_tenant(app, accounts, **provider_fields: Any):
    """A tenant with a local admin who configured one provider through the admin page."""
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as web:
        await web.login(admin)
        r = await add_provider(web, **provider_fields)
        assert r.status_code in (302, 303), r.text[:2000]
    return tenant, admin


def sso_user(owner_conn, tenant_id, subject: str):
    return owner_conn.execute(
        "SELECT id, username, email, role, auth_source, password_hash, external_issuer, external_subject, "
        "identity_provider_id, is_active, display_name FROM users WHERE tenant_id = %s AND external_subject = %s",
        [tenant_id, subject]).fetchone()


# -- the whole flow ------------------------------------------------------------------------------------

async def test_sso_flow_with_oidc_provider_mock_beside_local_users(app, accounts, owner_conn, oidc_mock) -> None:
    tenant, admin = await setup_tenant(app, accounts, discovery_url=oidc_mock.base, allowed_email_domains="acme.test",
                                       default_role="engineer")
    pid = provider_id(owner_conn, tenant[0])
    local = await accounts.user("viewer", tenant)
    oidc_mock.set_user("alice-0001", email="alice@acme.test", name="Alice Example", email_verified=True)

    async with new_web(app) as browser:
        page = await browser.get(f"/login?org={tenant[1]}")
        assert page.status_code == 200
        assert f'href="/sso/{tenant[1]}/{pid}"' in page.text
        assert "Acme SSO" in page.text

        authorize_url = await sso_start(browser, tenant[1], pid)
        params = query_of(authorize_url)
        assert authorize_url.startswith(oidc_mock.base + "/oauth2/authorize")
        assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
        assert params["state"] and params["nonce"] and params["client_id"] == "optria-client"
        assert params["redirect_uri"] == "http://testserver.local/sso/callback"
        callback = await oidc_mock.authorize(authorize_url, "alice-0001")
        r = await browser.get(app_path(callback))
        assert r.status_code in (302, 303) and r.headers["location"] == "/", r.text[:1500]
        home = await browser.get("/account/password")
        assert home.status_code == 200 and "Alice Example" in home.text

    row = sso_user(owner_conn, tenant[0], "alice-0001")
    assert row is not None
    _, username, email, role, source, pw_hash, issuer, subject, idp, active, display = row
    assert (email, role, source, pw_hash, issuer, idp, active) == ("alice@acme.test", "engineer", "sso", None,
                                                                   oidc_mock.issuer, pid, True)
    assert username == "alice" and display == "Alice Example"
    actions = [a for (a,) in owner_conn.execute("SELECT action FROM audit_log WHERE tenant_id = %s AND target_id = %s",
                                                [tenant[0], str(row[0])]).fetchall()]
    assert actions == ["user.sso_provisioned"]

    # the second sign-in finds the same account (no second user), and rotates to a fresh session
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, lambda url: oidc_mock.authorize(url, "alice-0001"))
        assert r.status_code in (302, 303)
        assert (await browser.get("/account/password")).status_code == 200
    assert owner_conn.execute("SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'sso'",
                              [tenant[0]]).fetchone()[0] == 1
    assert owner_conn.execute("SELECT count(*) FROM sessions WHERE user_id = %s", [row[0]]).fetchone()[0] == 2

    # a local user of the same tenant still signs in with a password
    async with new_web(app) as browser:
        await browser.login(local)
        assert (await browser.get("/account/password")).status_code == 200
    # the SSO user has no password: the password form tells them to use single sign-on
    async with new_web(app) as browser:
        r = await browser.post_form("/login", {"organization": tenant[1], "username": "alice", "password": "Anything-123"})
        assert r.status_code == 401 and "الدخول الموحّد" in r.text


async def test_login_page_lists_only_enabled_providers_of_that_organization(app, accounts, owner_conn, local_idp) -> None:
    tenant_a, admin_a = await setup_tenant(app, accounts, discovery_url=local_idp.base, name="Alpha SSO")
    tenant_b, admin_b = await setup_tenant(app, accounts, discovery_url=local_idp.base, name="Bravo SSO")
    async with new_web(app) as browser:
        page = (await browser.get(f"/login?org={tenant_a[1]}")).text
        assert "Alpha SSO" in page and "Bravo SSO" not in page
        assert "Alpha SSO" not in (await browser.get("/login")).text
        assert "Alpha SSO" not in (await browser.get("/login?org=no-such-org")).text
    owner_conn.execute("UPDATE identity_providers SET enabled = false WHERE tenant_id = %s", [tenant_a[0]])
    async with new_web(app) as browser:
        assert "Alpha SSO" not in (await browser.get(f"/login?org={tenant_a[1]}")).text
        # a disabled provider cannot be started by URL either
        pid = provider_id(owner_conn, tenant_a[0], "Alpha SSO")
        r = await browser.get(f"/sso/{tenant_a[1]}/{pid}")
        assert r.status_code == 404 and "خيار الدخول هذا غير متاح" in r.text
        # another tenant's provider id under this organization's name is not found
        pid_b = provider_id(owner_conn, tenant_b[0], "Bravo SSO")
        r = await browser.get(f"/sso/{tenant_a[1]}/{pid_b}")
        assert r.status_code == 404


async def test_pkce_verifier_and_client_secret_reach_the_token_endpoint(app, accounts, owner_conn, local_idp) -> None:
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base)
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "pkce-user", "email": "pkce@example.test"}
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)
        assert r.status_code in (302, 303), r.text[:1500]
    # the provider checked sha256(verifier) == challenge and the client secret; here we also see what was sent
    (sent,) = local_idp.token_requests
    assert 43 <= len(sent["code_verifier"]) <= 128
    assert pkce_challenge(sent["code_verifier"]) == local_idp.authorize_requests[0]["code_challenge"]


async def test_client_secret_is_sealed_at_rest_and_never_shown(app, accounts, owner_conn, local_idp) -> None:
    tenant, admin = await setup_tenant(app, accounts, discovery_url=local_idp.base)
    pid = provider_id(owner_conn, tenant[0])
    sealed = owner_conn.execute("SELECT client_secret_sealed FROM identity_providers WHERE id = %s", [pid]).fetchone()[0]
    assert sealed.startswith("v2:") and local_idp.client_secret not in sealed
    async with new_web(app) as web:
        await web.login(admin)
        for path in ("/management/sso", f"/management/sso/{pid}", "/management/audit"):
            assert local_idp.client_secret not in (await web.get(path)).text
        # saving the edit form with an empty secret keeps the stored one
        r = await web.post_form(f"/management/sso/{pid}", {"name": "Renamed SSO", "discovery_url": local_idp.base,
                                                           "client_id": "optria-client", "client_secret": "",
                                                           "default_role": "viewer", "enabled": "on"})
        assert r.status_code in (302, 303), r.text[:1500]
    assert owner_conn.execute("SELECT client_secret_sealed FROM identity_providers WHERE id = %s",
                              [pid]).fetchone()[0] == sealed
    audit = owner_conn.execute("SELECT details::text FROM audit_log WHERE tenant_id = %s AND target_type = 'identity_provider'",
                               [tenant[0]]).fetchall()
    assert len(audit) == 2 and all(local_idp.client_secret not in d and "v1:" not in d and "v2:" not in d for (d,) in audit)
    # the kept secret still works
    local_idp.claims = {"sub": "after-edit", "email": "after@example.test"}
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)
        assert r.status_code in (302, 303), r.text[:1500]


# -- who may sign in, and as whom -----------------------------------------------------------------------

async def test_disabled_sso_user_cannot_sign_in(app, accounts, owner_conn, local_idp) -> None:
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base)
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "dora", "email": "dora@example.test"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)
    owner_conn.execute("UPDATE users SET is_active = false WHERE external_subject = 'dora'")
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)
        assert r.status_code == 403 and "حسابك معطّل" in r.text
        assert (await browser.get("/account/password")).status_code in (302, 303)


async def test_email_domains_restrict_provisioning_only(app, accounts, owner_conn, local_idp) -> None:
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base, allowed_email_domains="acme.test, acme.sa")
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "outsider", "email": "eve@elsewhere.test"}
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)
        assert r.status_code == 403 and "نطاق بريدك" in r.text
    local_idp.claims = {"sub": "unverified", "email": "mallory@acme.test", "email_verified": False}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code == 403
    assert owner_conn.execute("SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'sso'",
                              [tenant[0]]).fetchone()[0] == 0
    local_idp.claims = {"sub": "insider", "email": "Ivan@ACME.sa"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)
    # an existing SSO account keeps working when its email claim later changes to another domain
    local_idp.claims = {"sub": "insider", "email": "ivan@private.test"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)


async def test_accounts_are_never_linked_by_email(app, accounts, owner_conn, local_idp) -> None:
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base)
    pid = provider_id(owner_conn, tenant[0])
    local = await accounts.user("tenant_admin", tenant, username="boss")  # email boss@example.test
    local_idp.claims = {"sub": "attacker", "email": "boss@example.test", "preferred_username": "boss"}
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)
        assert r.status_code == 403 and "غير مرتبط" in r.text
        assert (await browser.get("/account/password")).status_code in (302, 303)
    assert owner_conn.execute("SELECT auth_source, external_subject FROM users WHERE id = %s",
                              [local.user_id]).fetchone() == ("local", None)
    # the local account still signs in with its password
    async with new_web(app) as browser:
        await browser.login(local)


async def test_same_identity_in_two_tenants_gets_two_separate_accounts(app, accounts, owner_conn, local_idp) -> None:
    tenant_a, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base, default_role="tenant_admin")
    tenant_b, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base, default_role="viewer")
    pid_a, pid_b = provider_id(owner_conn, tenant_a[0]), provider_id(owner_conn, tenant_b[0])
    local_idp.claims = {"sub": "shared-sub", "email": "sam@example.test"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant_a[1], pid_a, local_idp.authorize_browser)).status_code in (302, 303)
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant_b[1], pid_b, local_idp.authorize_browser)).status_code in (302, 303)
        # signed in to B as B's viewer account, not A's admin
        assert (await browser.get("/management/users")).status_code == 403
    rows = owner_conn.execute("SELECT tenant_id, role FROM users WHERE external_subject = 'shared-sub' ORDER BY role",
                              ).fetchall()
    assert {(r[0], r[1]) for r in rows} == {(tenant_a[0], "tenant_admin"), (tenant_b[0], "viewer")}


async def test_role_mapping_applies_at_provisioning_and_never_grants_platform_owner(app, accounts, owner_conn,
                                                                                    local_idp) -> None:
    tenant, admin = await setup_tenant(app, accounts, discovery_url=local_idp.base, role_claim="groups",
                                       role_map="OPTRIA-Admins = tenant_admin\nOPTRIA-Reliability = reliability_engineer")
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "grace", "email": "grace@example.test", "groups": ["Staff", "OPTRIA-Reliability"]}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)
    local_idp.claims = {"sub": "nobody", "email": "nobody@example.test", "groups": "Staff"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)
    roles = dict(owner_conn.execute("SELECT external_subject, role FROM users WHERE tenant_id = %s AND auth_source = 'sso'",
                                    [tenant[0]]).fetchall())
    assert roles == {"grace": "reliability_engineer", "nobody": "viewer"}
    # a mapping to platform_owner (or any unknown role) is refused on the form, nothing saved
    async with new_web(app) as web:
        await web.login(admin)
        r = await add_provider(web, name="Bad map", discovery_url=local_idp.base, role_claim="groups",
                               role_map="Owners = platform_owner")
        assert r.status_code == 422 and 'name="role_map"' in r.text
        r = await add_provider(web, name="Bad default", discovery_url=local_idp.base, default_role="platform_owner")
        assert r.status_code == 422
    assert owner_conn.execute("SELECT count(*) FROM identity_providers WHERE tenant_id = %s",
                              [tenant[0]]).fetchone()[0] == 1


# -- Microsoft Entra ID style ----------------------------------------------------------------------------

async def test_entra_multitenant_issuer_tid_allow_list_and_tid_oid_key(app, accounts, owner_conn, entra_idp) -> None:
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as web:
        await web.login(admin)
        # the "{tenantid}" issuer needs an allow-list of directories
        r = await add_provider(web, name="Entra", discovery_url=entra_idp.entered_url)
        assert r.status_code == 422 and 'name="allowed_tenant_ids"' in r.text and "aria-invalid" in r.text
        r = await add_provider(web, name="Entra", discovery_url=entra_idp.entered_url, allowed_tenant_ids=ENTRA_TID)
        assert r.status_code in (302, 303), r.text[:1500]
    pid = provider_id(owner_conn, tenant[0], "Entra")
    assert owner_conn.execute("SELECT issuer FROM identity_providers WHERE id = %s", [pid]).fetchone()[0] \
        == f"{entra_idp.base}/{{tenantid}}/v2.0"

    entra_idp.claims = {"sub": "pairwise-sub-1", "tid": ENTRA_TID, "oid": "00000000-0000-0000-0000-0000000000aa",
                        "preferred_username": "lina@contoso.example", "name": "Lina"}
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, entra_idp.authorize_browser)
        assert r.status_code in (302, 303), r.text[:1500]
    row = owner_conn.execute("SELECT external_issuer, external_subject, email FROM users WHERE tenant_id = %s "
                             "AND auth_source = 'sso'", [tenant[0]]).fetchone()
    assert row == (f"{entra_idp.base}/{ENTRA_TID}/v2.0", "00000000-0000-0000-0000-0000000000aa", "lina@contoso.example")
    # the pairwise sub changes (another app registration), the oid does not: same account
    entra_idp.claims = {**entra_idp.claims, "sub": "pairwise-sub-2"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, entra_idp.authorize_browser)).status_code in (302, 303)
    assert owner_conn.execute("SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'sso'",
                              [tenant[0]]).fetchone()[0] == 1
    # a directory outside the allow-list is refused
    entra_idp.claims = {"sub": "x", "tid": OTHER_TID, "oid": "00000000-0000-0000-0000-0000000000bb",
                        "preferred_username": "max@fabrikam.example"}
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, entra_idp.authorize_browser)
        assert r.status_code == 401 and "Microsoft Entra" in r.text
    assert owner_conn.execute("SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'sso'",
                              [tenant[0]]).fetchone()[0] == 1


# -- bad answers: each refused with a message, nothing created --------------------------------------------

@pytest.mark.parametrize("mode, text", [
    ("tampered", "تعذر التحقق"),
    ("stranger_key", "تعذر التحقق"),
    ("expired", "انتهت صلاحية"),
    ("wrong_nonce", "لا تعود لمحاولة الدخول هذه"),
    ("wrong_audience", "تعذر التحقق"),
    ("wrong_issuer", "تعذر التحقق"),
])
async def test_bad_id_tokens_are_refused(app, accounts, owner_conn, local_idp, mode: str, text: str) -> None:
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base)
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": f"victim-{mode}", "email": f"{mode}@example.test"}
    local_idp.mode = mode
    async with new_web(app) as browser:
        r = await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)
        assert r.status_code == 401, r.text[:500]
        assert text in r.text
        assert (await browser.get("/account/password")).status_code in (302, 303)
    assert owner_conn.execute("SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'sso'",
                              [tenant[0]]).fetchone()[0] == 0


async def test_wrong_replayed_or_foreign_state_is_refused(app, accounts, owner_conn, local_idp) -> None:
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base)
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "stateful", "email": "state@example.test"}
    async with new_web(app) as browser:
        callback = await local_idp.authorize_browser(await sso_start(browser, tenant[1], pid))
        code = query_of(callback)["code"]
        r = await browser.get(f"/sso/callback?code={code}&state=forged-state")
        assert r.status_code == 400 and "غير صالحة لهذا المتصفح" in r.text
        assert (await browser.get(app_path(callback))).status_code in (302, 303)  # the right state still works once
        await browser.logout()
        r = await browser.get(app_path(callback))  # replayed: the pending entry was used up
        assert r.status_code == 400
    # a callback carried to another browser (login CSRF) finds no pending sign-in there
    async with new_web(app) as attacker, new_web(app) as victim:
        callback = await local_idp.authorize_browser(await sso_start(attacker, tenant[1], pid))
        r = await victim.get(app_path(callback))
        assert r.status_code == 400
        assert (await victim.get("/account/password")).status_code in (302, 303)
    # the provider reporting an error (user pressed "deny")
    async with new_web(app) as browser:
        authorize_url = await sso_start(browser, tenant[1], pid)
        state = query_of(authorize_url)["state"]
        r = await browser.get(f"/sso/callback?error=access_denied&state={state}")
        assert r.status_code == 401 and "لم يُكمل" in r.text


async def test_unreachable_discovery_is_a_clear_error_on_the_form_and_at_sign_in(app, accounts, owner_conn,
                                                                                 local_idp) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as web:
        await web.login(admin)
        r = await add_provider(web, discovery_url=dead)
        assert r.status_code == 422 and "تعذر الوصول إلى مزود الهوية" in r.text
        assert 'value="s3cret' not in r.text  # the secret is not echoed back
        r = await add_provider(web, discovery_url="http://idp.example.com")
        assert r.status_code == 422 and "https://" in r.text
        r = await add_provider(web, discovery_url="not a url")
        assert r.status_code == 422
        assert owner_conn.execute("SELECT count(*) FROM identity_providers").fetchone()[0] == 0
        # a saved provider whose address stops answering: the test button and the sign-in say so
        r = await add_provider(web, discovery_url=local_idp.base)
        assert r.status_code in (302, 303)
        pid = provider_id(owner_conn, tenant[0])
        owner_conn.execute("UPDATE identity_providers SET discovery_url = %s WHERE id = %s", [dead, pid])
        r = await web.post_form(f"/management/sso/{pid}/test")
        assert r.status_code in (302, 303)
        page = await web.get(f"/management/sso/{pid}")
        assert "تعذر الوصول إلى مزود الهوية" in page.text
    app.state.oidc = None  # forget the cached discovery document, as a fresh web process would
    async with new_web(app) as browser:
        r = await browser.get(f"/sso/{tenant[1]}/{pid}")
        assert r.status_code == 503 and "تعذر الوصول إلى مزود الهوية" in r.text


# -- protocol pieces ------------------------------------------------------------------------------------------

def test_which_email_claim_is_trusted_for_provisioning() -> None:
    assert verified_email({"email": "a@x.test"}) == "a@x.test"
    assert verified_email({"email": "a@x.test", "email_verified": False}) is None
    assert verified_email({"preferred_username": "a@x.test"}) is None  # not Entra: a username is not an email
    # Entra ID: the mutable "email" attribute is not trusted without xms_edov; the UPN is
    entra = {"tid": ENTRA_TID, "email": "ceo@victim.test", "preferred_username": "eve@attacker.test"}
    assert verified_email(entra) == "eve@attacker.test"
    assert verified_email({**entra, "xms_edov": True}) == "ceo@victim.test"
    assert verified_email({"tid": ENTRA_TID, "email": "ceo@victim.test"}) is None


def test_discovery_url_and_pkce_helpers() -> None:
    assert discovery_document_url("https://login.example/v2.0/") == "https://login.example/v2.0/.well-known/openid-configuration"
    assert discovery_document_url("https://x/.well-known/openid-configuration") == "https://x/.well-known/openid-configuration"
    # RFC 7636 appendix B
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", pkce_challenge("x" * 50))


async def test_production_refuses_plain_http_and_private_addresses() -> None:
    client = OidcClient(production=True)
    for url in ("http://127.0.0.1:9/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://localhost/x"):
        with pytest.raises(OidcError):
            await client.check_url(url)
    await OidcClient(production=False).check_url("http://127.0.0.1:9/x")
    with pytest.raises(OidcError) as exc:
        await OidcClient(production=False).check_url("http://idp.example.com/x")
    assert exc.value.message == sso_mod.MSG_HTTPS


# -- issue 13: later sign-ins, reloads, RFC 9207 ---------------------------------------------------------

async def test_later_sign_ins_refresh_name_and_email_but_not_the_role(app, accounts, owner_conn, local_idp) -> None:
    tenant, admin = await setup_tenant(app, accounts, discovery_url=local_idp.base, default_role="engineer")
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "rita", "email": "rita@example.test", "name": "Rita Old"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)
    owner_conn.execute("UPDATE users SET role = 'viewer' WHERE external_subject = 'rita'")   # the admin's decision
    local_idp.claims = {"sub": "rita", "email": "rita.new@example.test", "name": "Rita New"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)
    row = sso_user(owner_conn, tenant[0], "rita")
    assert (row[2], row[10], row[3]) == ("rita.new@example.test", "Rita New", "viewer")
    audit = owner_conn.execute("SELECT details FROM audit_log WHERE tenant_id = %s AND action = "
                               "'user.sso_profile_refreshed'", [tenant[0]]).fetchall()
    assert [a[0]["changed"] for a in audit] == [["name", "email"]]
    # an email another account holds is not taken over; the name still follows
    await accounts.user("viewer", tenant, username="taken")          # taken@example.test
    local_idp.claims = {"sub": "rita", "email": "taken@example.test", "name": "Rita Third"}
    async with new_web(app) as browser:
        assert (await sso_login(browser, tenant[1], pid, local_idp.authorize_browser)).status_code in (302, 303)
    row = sso_user(owner_conn, tenant[0], "rita")
    assert (row[2], row[10]) == ("rita.new@example.test", "Rita Third")


async def test_reloading_a_refused_answer_repeats_the_refusal(app, accounts, owner_conn, local_idp) -> None:
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base, allowed_email_domains="acme.test")
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "outsider", "email": "eve@elsewhere.test"}
    async with new_web(app) as browser:
        callback = await local_idp.authorize_browser(await sso_start(browser, tenant[1], pid))
        first = await browser.get(app_path(callback))
        assert first.status_code == 403 and "نطاق بريدك" in first.text
        again = await browser.get(app_path(callback))                 # the user presses reload
        assert again.status_code == 403 and "نطاق بريدك" in again.text
        assert "غير صالحة لهذا المتصفح" not in again.text          # not "state invalid"


async def test_an_answer_naming_another_issuer_is_a_mix_up(app, accounts, owner_conn, local_idp) -> None:
    """RFC 9207: the authorization answer's iss is checked before the code goes anywhere, and the refusal
    says what happened instead of blaming the client id and secret."""
    tenant, _ = await setup_tenant(app, accounts, discovery_url=local_idp.base)
    pid = provider_id(owner_conn, tenant[0])
    local_idp.claims = {"sub": "mixed", "email": "mixed@example.test"}
    async with new_web(app) as browser:
        callback = await local_idp.authorize_browser(await sso_start(browser, tenant[1], pid))
        r = await browser.get(app_path(callback) + "&iss=https%3A%2F%2Fevil.example")
        assert r.status_code == 401 and "مزوّد هوية غير الذي اخترته" in r.text
        assert "معرّف العميل" not in r.text                               # the client id is not blamed
    assert sso_user(owner_conn, tenant[0], "mixed") is None
    async with new_web(app) as browser:                                   # its own issuer is accepted
        callback = await local_idp.authorize_browser(await sso_start(browser, tenant[1], pid))
        r = await browser.get(app_path(callback) + "&iss=" + local_idp.base.replace(":", "%3A").replace("/", "%2F"))
        assert r.status_code in (302, 303), r.text[:500]
        # a code used already (or issued elsewhere) under a fresh state: the answer is refused, not the client
        await browser.logout()
        state = query_of(await sso_start(browser, tenant[1], pid))["state"]
        r = await browser.get(f"/sso/callback?code={query_of(callback)['code']}&state={state}")
        assert r.status_code == 401 and "لم يقبل مزوّد الهوية جواب الدخول" in r.text


def test_a_provider_that_promises_iss_must_send_it_and_a_refused_code_blames_the_answer() -> None:
    meta = sso_mod.ProviderMetadata("https://idp.example", "https://idp.example/a", "https://idp.example/t",
                                    "https://idp.example/k", ("RS256",), (), iss_parameter_supported=True)
    with pytest.raises(OidcError) as missing:
        OidcClient.check_response_issuer(meta, None)
    assert missing.value.message == sso_mod.MSG_MIXUP
    OidcClient.check_response_issuer(meta, "https://idp.example")
    entra = sso_mod.ProviderMetadata("https://login.microsoftonline.com/{tenantid}/v2.0", "a", "t", "k", ("RS256",), ())
    OidcClient.check_response_issuer(entra, f"https://login.microsoftonline.com/{ENTRA_TID}/v2.0")
    with pytest.raises(OidcError):
        OidcClient.check_response_issuer(entra, "https://login.microsoftonline.com/evil/v2.0/x")
    assert sso_mod.MSG_TOKEN_REFUSED != sso_mod.MSG_CODE_REFUSED and "client" not in sso_mod.MSG_CODE_REFUSED
