-- Assets: sites, units, assets, alerts, work orders, their append-only histories, and asset health.
--
-- Every table is tenant-scoped: tenant_id leads each primary key and every foreign key to another
-- tenant table carries it, so the database refuses a row that points into another tenant. Codes are
-- citext: unique per tenant (per site for units) regardless of case.
--
-- alert_history / work_order_history are append-only logs written in the same transaction as each
-- change. Readers (the Industrial Black Box collectors) follow them by id; xact_id records the
-- writing transaction so a reader can stop below the oldest transaction still in flight
-- (pg_snapshot_xmin(pg_current_snapshot())) and never skip a row whose id was taken earlier but
-- committed later.

CREATE TABLE sites (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    code citext NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$'),
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    name_ar text CHECK (name_ar IS NULL OR length(btrim(name_ar)) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    timezone text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);
ALTER TABLE sites ENABLE ROW LEVEL SECURITY;
ALTER TABLE sites FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sites USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE units (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    site_id bigint NOT NULL,
    code citext NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$'),
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    name_ar text CHECK (name_ar IS NULL OR length(btrim(name_ar)) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, site_id, code),
    -- lets assets reference (site, unit) together, so an asset's unit always lies in its site
    UNIQUE (tenant_id, site_id, id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id)
);
ALTER TABLE units ENABLE ROW LEVEL SECURITY;
ALTER TABLE units FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON units USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE assets (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    site_id bigint NOT NULL,
    unit_id bigint,
    code citext NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$'),
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    name_ar text CHECK (name_ar IS NULL OR length(btrim(name_ar)) BETWEEN 1 AND 200),
    asset_type text NOT NULL DEFAULT 'other' CHECK (asset_type ~ '^[a-z][a-z0-9_]{0,39}$'),
    criticality text NOT NULL DEFAULT 'medium' CHECK (criticality IN ('low', 'medium', 'high')),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    -- how often fresh data is expected; readers call a health row older than a few intervals stale
    expected_interval_s integer NOT NULL DEFAULT 60 CHECK (expected_interval_s BETWEEN 1 AND 86400),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id),
    FOREIGN KEY (tenant_id, site_id, unit_id) REFERENCES units (tenant_id, site_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id)
);
CREATE INDEX assets_tenant_site_unit ON assets (tenant_id, site_id, unit_id);
ALTER TABLE assets ENABLE ROW LEVEL SECURITY;
ALTER TABLE assets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assets USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE alerts (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    asset_id bigint NOT NULL,
    severity text NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    title text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'cleared')),
    raised_at timestamptz NOT NULL DEFAULT now(),
    raised_by uuid,
    acknowledged_at timestamptz,
    acknowledged_by uuid,
    cleared_at timestamptz,
    cleared_by uuid,
    source text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'rule', 'ingest', 'ai')),
    -- what raised it outside the UI (rule id, mapping id, AI run id); one live alert per (asset, source, ref)
    source_ref text CHECK (source_ref IS NULL OR length(source_ref) BETWEEN 1 AND 200),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    FOREIGN KEY (tenant_id, raised_by) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, acknowledged_by) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, cleared_by) REFERENCES users (tenant_id, id),
    CHECK ((status = 'cleared') = (cleared_at IS NOT NULL)),
    CHECK (status <> 'acknowledged' OR acknowledged_at IS NOT NULL)
);
CREATE INDEX alerts_tenant_status_time ON alerts (tenant_id, status, raised_at DESC);
CREATE INDEX alerts_tenant_asset_time ON alerts (tenant_id, asset_id, raised_at DESC);
CREATE UNIQUE INDEX alerts_live_per_source_ref ON alerts (tenant_id, asset_id, source, source_ref)
    WHERE status <> 'cleared' AND source_ref IS NOT NULL;
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alerts USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE work_orders (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    asset_id bigint NOT NULL,
    -- the alert that prompted it, when there was one
    alert_id bigint,
    title text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    priority text NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid,
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    closed_by uuid,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, closed_by) REFERENCES users (tenant_id, id),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX work_orders_tenant_status_time ON work_orders (tenant_id, status, created_at DESC);
CREATE INDEX work_orders_tenant_asset_time ON work_orders (tenant_id, asset_id, created_at DESC);
ALTER TABLE work_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE work_orders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON work_orders USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Append-only: one row per alert transition (raised, acknowledged, cleared).
CREATE TABLE alert_history (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    alert_id bigint NOT NULL,
    asset_id bigint NOT NULL,
    action text NOT NULL CHECK (action IN ('raised', 'acknowledged', 'cleared')),
    from_status text CHECK (from_status IN ('open', 'acknowledged', 'cleared')),
    to_status text NOT NULL CHECK (to_status IN ('open', 'acknowledged', 'cleared')),
    actor_user_id uuid,
    actor_name text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 1000),
    xact_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, alert_id) REFERENCES alerts (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    FOREIGN KEY (tenant_id, actor_user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX alert_history_id ON alert_history (id);
CREATE INDEX alert_history_alert ON alert_history (tenant_id, alert_id, id);
ALTER TABLE alert_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alert_history USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Append-only: one row per work-order transition (opened, status_changed, closed).
CREATE TABLE work_order_history (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    work_order_id bigint NOT NULL,
    asset_id bigint NOT NULL,
    action text NOT NULL CHECK (action IN ('opened', 'status_changed', 'closed')),
    from_status text CHECK (from_status IN ('open', 'in_progress', 'closed')),
    to_status text NOT NULL CHECK (to_status IN ('open', 'in_progress', 'closed')),
    actor_user_id uuid,
    actor_name text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 1000),
    xact_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, work_order_id) REFERENCES work_orders (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    FOREIGN KEY (tenant_id, actor_user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX work_order_history_id ON work_order_history (id);
CREATE INDEX work_order_history_wo ON work_order_history (tenant_id, work_order_id, id);
ALTER TABLE work_order_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE work_order_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON work_order_history USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Health written by the twin's scoring job: a time series per asset, and the latest row per asset.
-- health_score and failure_probability are null when status is 'nodata'.
CREATE TABLE asset_metrics_snapshot (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    asset_id bigint NOT NULL,
    time timestamptz NOT NULL,
    health_score double precision CHECK (health_score BETWEEN 0 AND 100),
    failure_probability double precision CHECK (failure_probability BETWEEN 0 AND 1),
    status text NOT NULL CHECK (status IN ('normal', 'warning', 'critical', 'nodata')),
    source text NOT NULL DEFAULT 'rules' CHECK (source IN ('rules', 'ai')),
    -- [{"signal_id": .., "name": .., "value": .., "reason": .., "weight": ..}, ...]
    contributing jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (tenant_id, asset_id, time),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id)
);
ALTER TABLE asset_metrics_snapshot ENABLE ROW LEVEL SECURITY;
ALTER TABLE asset_metrics_snapshot FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON asset_metrics_snapshot USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE asset_health_latest (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    asset_id bigint NOT NULL,
    time timestamptz NOT NULL,
    health_score double precision CHECK (health_score BETWEEN 0 AND 100),
    failure_probability double precision CHECK (failure_probability BETWEEN 0 AND 1),
    status text NOT NULL CHECK (status IN ('normal', 'warning', 'critical', 'nodata')),
    source text NOT NULL DEFAULT 'rules' CHECK (source IN ('rules', 'ai')),
    contributing jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, asset_id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id)
);
CREATE INDEX asset_health_latest_risk ON asset_health_latest (tenant_id, failure_probability DESC NULLS LAST);
ALTER TABLE asset_health_latest ENABLE ROW LEVEL SECURITY;
ALTER TABLE asset_health_latest FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON asset_health_latest USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));
