-- Integrations (OPC-UA, PI Web API, SQL sources), their action log, discovered signals and
-- the mapping of signals to assets with limits.

CREATE TABLE integrations (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    kind text NOT NULL CHECK (kind IN ('opcua', 'pi', 'sql')),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    config jsonb NOT NULL DEFAULT '{}'::jsonb,        -- non-secret settings only
    secrets jsonb NOT NULL DEFAULT '{}'::jsonb,       -- sealed values (optria.secretbox), never returned
    enabled boolean NOT NULL DEFAULT true,
    is_demo boolean NOT NULL DEFAULT false,
    demo_stream boolean NOT NULL DEFAULT false,       -- "Demo stream" switched on from the Data Sources card
    last_test_at timestamptz,
    last_test_success boolean,
    last_test_message text,
    last_test_details jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (id)
);
CREATE UNIQUE INDEX integrations_name_per_tenant ON integrations (tenant_id, lower(name));
ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integrations USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE integration_action_log (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    integration_id bigint NOT NULL,
    action text NOT NULL,
    success boolean NOT NULL,
    message text NOT NULL DEFAULT '',
    duration_ms integer,
    actor_user_id uuid,
    actor_name text NOT NULL DEFAULT 'system',
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
CREATE INDEX integration_action_log_recent ON integration_action_log (tenant_id, integration_id, created_at DESC);
ALTER TABLE integration_action_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE integration_action_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integration_action_log USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- External tags chosen or discovered in a source. id is global (identity) so the ingest path
-- keys samples by signal id alone; external_id is the stable source id (NodeId, PI WebId, SQL tag).
CREATE TABLE signals (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    integration_id bigint NOT NULL,
    external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 1000),
    name text NOT NULL,
    path text NOT NULL DEFAULT '',
    data_type text,
    eng_unit text,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (id),
    UNIQUE (tenant_id, integration_id, external_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
ALTER TABLE signals ENABLE ROW LEVEL SECURITY;
ALTER TABLE signals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signals USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE external_signal_mappings (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    signal_id bigint NOT NULL,
    asset_id bigint NOT NULL,
    metric_role text NOT NULL CHECK (metric_role IN ('vibration', 'temperature', 'pressure', 'flow', 'power',
                                                      'running', 'level', 'speed', 'current', 'other')),
    unit text,
    scale double precision NOT NULL DEFAULT 1,
    "offset" double precision NOT NULL DEFAULT 0,
    warn_low double precision,
    warn_high double precision,
    crit_low double precision,
    crit_high double precision,
    expected_interval_s integer NOT NULL DEFAULT 60 CHECK (expected_interval_s > 0),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, signal_id),
    FOREIGN KEY (tenant_id, signal_id) REFERENCES signals (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    CHECK (warn_low IS NULL OR warn_high IS NULL OR warn_low <= warn_high),
    CHECK (crit_low IS NULL OR crit_high IS NULL OR crit_low <= crit_high),
    CHECK (scale <> 0)
);
CREATE INDEX external_signal_mappings_asset ON external_signal_mappings (tenant_id, asset_id);
ALTER TABLE external_signal_mappings ENABLE ROW LEVEL SECURITY;
ALTER TABLE external_signal_mappings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON external_signal_mappings USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Wake the ingest supervisor when integrations or mappings change.
CREATE FUNCTION optria_notify_ingest_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('optria_ingest_config', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER integrations_changed AFTER INSERT OR UPDATE OR DELETE ON integrations
    FOR EACH STATEMENT EXECUTE FUNCTION optria_notify_ingest_config();
CREATE TRIGGER mappings_changed AFTER INSERT OR UPDATE OR DELETE ON external_signal_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION optria_notify_ingest_config();
