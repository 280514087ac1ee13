"""Separate keys per job, values sealed before HKDF still readable, and `optria rotate-secret`."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from optria.identity.sso_providers import secret_context as provider_context
from optria.secretbox import (PURPOSE_CSRF, PURPOSE_SECRETS_AT_REST, PURPOSE_SESSION_COOKIE, SecretBox, SecretBoxError,
                              derive_key)
from optria.shell.app import create_app
from tests.fix_web import make_settings, new_web

OLD = "the-old-session-secret-" + "o" * 24
NEW = "the-new-session-secret-" + "n" * 24
PASSWORD = "Plant-OPC-Password-991"
CLIENT_SECRET = "sso-client-secret-4471"


def _legacy_seal(secret: str, plaintext: str, context: str) -> str:
    """A value as versions before HKDF stored it (v1: key = sha256 of a label and the secret)."""
    key = hashlib.sha256(b"optria-secretbox\0" + secret.encode()).digest()
    nonce = os.urandom(12)
    return "v1:" + base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext.encode(),
                                                                          context.encode())).decode()


def test_each_job_has_its_own_key() -> None:
    secret = NEW.encode()
    keys = {derive_key(secret, p) for p in (PURPOSE_SESSION_COOKIE, PURPOSE_CSRF, PURPOSE_SECRETS_AT_REST)}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    assert hashlib.sha256(secret).digest() not in keys
    assert derive_key(secret, PURPOSE_CSRF) == derive_key(secret, PURPOSE_CSRF)
    assert derive_key(OLD.encode(), PURPOSE_CSRF) != derive_key(secret, PURPOSE_CSRF)


def test_values_sealed_before_hkdf_still_open() -> None:
    legacy = _legacy_seal(NEW, "pw", "t1:integration:password")
    box = SecretBox(NEW.encode())
    assert box.open(legacy, context="t1:integration:password") == "pw"
    assert not SecretBox.is_current(legacy) and SecretBox.is_current(box.seal("pw", context="c"))
    for damaged in ("v2:!!!", "v2:" + base64.urlsafe_b64encode(b"short").decode(), "v9:abc", ""):
        try:
            box.open(damaged, context="c")
        except SecretBoxError:
            continue
        raise AssertionError(f"{damaged!r} opened")


def _rotate(db_dsn: str, tmp_path, *, new: str, old: str | None, dry_run: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPTRIA_OLD_SESSION_SECRET"}
    env.update({"DATABASE_URL": db_dsn, "SESSION_SECRET": new, "APP_ENV": "test", "OPTRIA_DATA_DIR": str(tmp_path)})
    args = [sys.executable, "-m", "optria.cli", "rotate-secret"] + (["--dry-run"] if dry_run else [])
    if old:
        path = tmp_path / "old-secret"
        path.write_text(old + "\n")
        args += ["--old-secret-file", str(path)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


async def test_rotate_secret_reseals_every_stored_credential(db, db_dsn, accounts, owner_conn, tmp_path) -> None:
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    old_app = create_app(make_settings(SESSION_SECRET=OLD), db)
    async with new_web(old_app) as w:
        await w.login(admin)
        r = await w.api("POST", "/api/integrations", {"kind": "opcua", "name": "Line 7", "enabled": False,
                                                      "password": PASSWORD,
                                                      "config": {"endpoint_url": "opc.tcp://127.0.0.1:9",
                                                                 "auth_type": "username", "username": "plant"}})
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
    owner_conn.execute("""INSERT INTO identity_providers (tenant_id, name, discovery_url, client_id, client_secret_sealed)
                          VALUES (%s, 'Entra', 'https://login.example.test/v2.0', 'client', %s)""",
                       [tenant[0], SecretBox(OLD.encode()).seal(CLIENT_SECRET, context=provider_context(tenant[0]))])
    # a value from before HKDF, in a second integration
    legacy = _legacy_seal(OLD, PASSWORD, f"{tenant[0]}:integration:password")
    owner_conn.execute("""INSERT INTO integrations (tenant_id, kind, name, config, secrets, enabled)
                          VALUES (%s, 'opcua', 'Legacy line', '{}', %s::jsonb, false)""",
                       [tenant[0], '{"password": "%s"}' % legacy])

    # the secret changed but nothing was rotated yet: a clear 409 naming the problem, and a log line naming the integration
    new_app = create_app(make_settings(SESSION_SECRET=NEW), db)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("optria.integrations").addHandler(handler)
    async with new_web(new_app) as w:
        await w.login(admin)
        r = await w.api("POST", f"/api/integrations/{iid}/test")  # a failed test that says why
        assert r.status_code == 200 and r.json()["details"]["reason"] == "secret_unreadable", r.text
        assert "rotate-secret" in r.json()["message"]
        r = await w.get(f"/api/integrations/{iid}/browse")
        assert r.status_code == 409 and r.json()["error"]["code"] == "secret_unreadable", r.text
        page = await w.get("/management/sso")  # the admin sees which provider is affected
        assert page.status_code == 200 and page.text.count('data-testid="secret-unreadable"') == 1
        assert "optria rotate-secret" in page.text and "Entra" in page.text
    logging.getLogger("optria.integrations").removeHandler(handler)
    assert any(getattr(rec, "integration", None) == "Line 7" and getattr(rec, "integration_id", None) == iid
               for rec in records if rec.getMessage() == "integrations.secret_unreadable")

    dry = _rotate(db_dsn, tmp_path, new=NEW, old=OLD, dry_run=True)
    assert dry.returncode == 0 and "would re-seal 3 stored secret(s)" in dry.stdout, dry.stdout + dry.stderr
    done = _rotate(db_dsn, tmp_path, new=NEW, old=OLD)
    assert done.returncode == 0 and "re-sealed 3 stored secret(s); 0 already current; 0 unreadable" in done.stdout, \
        done.stdout + done.stderr
    for text in (done.stdout, done.stderr, dry.stdout, dry.stderr):
        assert OLD not in text and NEW not in text and PASSWORD not in text and CLIENT_SECRET not in text

    box = SecretBox(NEW.encode())
    for (secrets,) in owner_conn.execute("SELECT secrets FROM integrations WHERE tenant_id = %s", [tenant[0]]):
        assert secrets["password"].startswith("v2:")
        assert box.open(secrets["password"], context=f"{tenant[0]}:integration:password") == PASSWORD
    (sealed,) = owner_conn.execute("SELECT client_secret_sealed FROM identity_providers WHERE tenant_id = %s",
                                   [tenant[0]]).fetchone()
    assert box.open(sealed, context=provider_context(tenant[0])) == CLIENT_SECRET

    async with new_web(new_app) as w:  # the integration works again with the new secret
        await w.login(admin)
        assert 'data-testid="secret-unreadable"' not in (await w.get("/management/sso")).text
        r = await w.api("POST", f"/api/integrations/{iid}/test")
        assert r.status_code == 200 and r.json()["success"] is False  # nothing listens there; the secret opened

    again = _rotate(db_dsn, tmp_path, new=NEW, old=OLD)  # idempotent
    assert again.returncode == 0 and "re-sealed 0 stored secret(s); 3 already current" in again.stdout

    lost = _rotate(db_dsn, tmp_path, new="a-third-secret-nobody-used-" + "z" * 20, old=None)
    assert lost.returncode == 1
    assert "3 unreadable" in lost.stdout
    assert "integration" in lost.stdout and "'Line 7'" in lost.stdout and tenant[1] in lost.stdout
    assert "identity provider" in lost.stdout and "'Entra'" in lost.stdout and "client secret" in lost.stdout
