-- Identity: per-tenant OpenID Connect identity providers, linked from SSO users.
--
-- A provider belongs to one tenant. Its client secret is stored sealed (optria.secretbox, AES-GCM
-- with the tenant id bound as associated data), never in clear. SSO users point at the provider that
-- provisioned them through (tenant_id, identity_provider_id), so a user can never reference another
-- tenant's provider.

CREATE TABLE identity_providers (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- what the admin entered: an issuer URL or the full discovery document URL
    discovery_url text NOT NULL CHECK (length(discovery_url) BETWEEN 8 AND 500),
    -- the issuer announced by the discovery document when it was last tested; may hold the
    -- "{tenantid}" placeholder of a multi-tenant Microsoft Entra ID application
    issuer text,
    client_id text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 200),
    client_secret_sealed text,
    allowed_email_domains text[] NOT NULL DEFAULT '{}',
    -- Entra ID directory (tid) allow-list, required when the issuer is a "{tenantid}" template
    allowed_tenant_ids text[] NOT NULL DEFAULT '{}',
    default_role text NOT NULL DEFAULT 'viewer'
        CHECK (default_role IN ('tenant_admin', 'optimization_engineer', 'reliability_engineer', 'engineer', 'viewer')),
    -- {"claim": "groups", "map": {"<claim value>": "<role>"}}; applied when an account is provisioned
    role_mapping jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled boolean NOT NULL DEFAULT true,
    last_tested_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX identity_providers_name_per_tenant ON identity_providers (tenant_id, lower(name));
ALTER TABLE identity_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_providers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity_providers
    USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- An SSO user's provider is one of its own tenant's providers.
ALTER TABLE users ADD CONSTRAINT users_identity_provider_fk
    FOREIGN KEY (tenant_id, identity_provider_id) REFERENCES identity_providers (tenant_id, id);

-- User lists filter and sort by these within a tenant.
CREATE INDEX users_tenant_role ON users (tenant_id, role, is_active);
CREATE INDEX users_tenant_created ON users (tenant_id, created_at DESC);
CREATE INDEX audit_log_tenant_target ON audit_log (tenant_id, target_type, target_id);
