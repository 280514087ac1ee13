-- Core: tenants, users, sessions, audit log, and the row-level security helpers.
-- Every tenant table enables and forces RLS with a policy built on optria_tenant_visible().

CREATE EXTENSION IF NOT EXISTS citext;

-- True when the current transaction is scoped to this tenant, or runs in the explicit platform scope.
CREATE FUNCTION optria_tenant_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('optria.platform', true), '') <> ''
        OR (row_tenant IS NOT NULL
            AND row_tenant = nullif(current_setting('optria.tenant_id', true), '')::uuid)
$$;

CREATE TABLE tenants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug citext NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    is_demo boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (optria_tenant_visible(id)) WITH CHECK (optria_tenant_visible(id));

-- Users: tenant_id is null only for platform owners, so the key is id with (tenant_id, id) unique
-- for tenant-carrying foreign keys.
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid REFERENCES tenants (id),
    username citext NOT NULL CHECK (length(username) BETWEEN 2 AND 64),
    email citext NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name text,
    role text NOT NULL CHECK (role IN ('platform_owner', 'tenant_admin', 'optimization_engineer',
                                       'reliability_engineer', 'engineer', 'viewer')),
    is_active boolean NOT NULL DEFAULT true,
    auth_source text NOT NULL DEFAULT 'local' CHECK (auth_source IN ('local', 'sso')),
    password_hash text,
    must_change_password boolean NOT NULL DEFAULT false,
    identity_provider_id bigint,
    external_issuer text,
    external_subject text,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'platform_owner') = (tenant_id IS NULL)),
    CHECK (auth_source = 'sso' OR password_hash IS NOT NULL),
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX users_username_per_tenant ON users (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), username);
CREATE UNIQUE INDEX users_email_per_tenant ON users (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), email);
CREATE UNIQUE INDEX users_external_identity ON users (tenant_id, external_issuer, external_subject)
    WHERE external_subject IS NOT NULL;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Server-side session records: the cookie carries only the id; logout and disabling revoke here.
CREATE TABLE sessions (
    id text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    tenant_id uuid REFERENCES tenants (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    client_addr text,
    user_agent text
);
CREATE INDEX sessions_user ON sessions (user_id);
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Login attempts by account and client address, for throttling (pre-authentication: no tenant scope).
CREATE TABLE login_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_key text NOT NULL,
    client_addr text NOT NULL,
    success boolean NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_account ON login_attempts (account_key, attempted_at);
CREATE INDEX login_attempts_addr ON login_attempts (client_addr, attempted_at);

-- Audit of admin actions. tenant_id is null for platform-level actions.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id uuid REFERENCES tenants (id),
    actor_user_id uuid,
    actor_name text NOT NULL,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text,
    target_name text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    client_addr text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, created_at DESC);
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));
