-- Industrial Black Box: the canonical event log, incidents grouped from it, and the collectors' state.
--
-- industrial_events is append-only. Every collector writes with ON CONFLICT DO NOTHING on
-- (tenant_id, source_system, source_id, event_time), so re-reading a source never duplicates.
-- The primary key carries event_time because TimescaleDB makes this table a hypertable on it
-- (sql/timescale/0002_blackbox.sql), and every unique index of a hypertable must include the
-- partitioning column. For the same reason incident_events has no foreign key to the events: it
-- carries (event_id, event_time) and the timeline joins on the primary key.
--
-- xact_id records the writing transaction. Readers that follow the log (the grouping job) read
-- in (xact_id, id) order and stop below the oldest transaction still in flight
-- (pg_snapshot_xmin(pg_current_snapshot())), so a row whose id was taken earlier but committed
-- later is never skipped. The alert and work-order history tables get the same index below.

CREATE TABLE industrial_events (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    event_time timestamptz NOT NULL,
    ingest_time timestamptz NOT NULL DEFAULT now(),
    source_system text NOT NULL CHECK (source_system ~ '^[a-z][a-z0-9_.-]{0,39}$'),
    source_type text NOT NULL CHECK (source_type ~ '^[a-z][a-z0-9_.-]{0,59}$'),
    source_id text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 300),
    severity text NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    event_category text NOT NULL CHECK (event_category IN ('alarm', 'limit', 'quality', 'maintenance', 'operator_action',
                                                           'integration', 'optimization', 'failure', 'process')),
    summary text NOT NULL CHECK (length(summary) BETWEEN 1 AND 500),
    payload jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object'),
    asset_id bigint,
    site_id bigint,
    unit_id bigint,
    integration_id bigint,
    signal_id bigint,
    actor text CHECK (actor IS NULL OR length(actor) <= 200),
    correlation_id text CHECK (correlation_id IS NULL OR length(correlation_id) <= 200),
    -- set on alarm annunciations only (alert raised, limit breached, OPC-UA alarm active): the alarm's
    -- identity, so ISA-18.2 figures can count "the same alarm" (rates, chattering, most frequent)
    alarm_key text CHECK (alarm_key IS NULL OR length(alarm_key) BETWEEN 1 AND 300),
    -- null: a current event; 'future' / 'far_past': kept, shown, but never grouped into an incident
    time_flag text CHECK (time_flag IN ('future', 'far_past')),
    -- how many identical source occurrences this row stands for (a source that reports a repeat counter)
    repeat_count integer NOT NULL DEFAULT 1 CHECK (repeat_count BETWEEN 1 AND 1000000),
    xact_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (tenant_id, id, event_time),
    UNIQUE (tenant_id, source_system, source_id, event_time),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id),
    FOREIGN KEY (tenant_id, signal_id) REFERENCES signals (tenant_id, id)
);
CREATE INDEX industrial_events_tenant_time ON industrial_events (tenant_id, event_time DESC);
CREATE INDEX industrial_events_tenant_asset_time ON industrial_events (tenant_id, asset_id, event_time DESC);
CREATE INDEX industrial_events_tenant_site_time ON industrial_events (tenant_id, site_id, event_time DESC);
CREATE INDEX industrial_events_tenant_integration_time ON industrial_events (tenant_id, integration_id, event_time DESC)
    WHERE integration_id IS NOT NULL;
CREATE INDEX industrial_events_alarms ON industrial_events (tenant_id, event_time, alarm_key) WHERE alarm_key IS NOT NULL;
CREATE INDEX industrial_events_alarm_key ON industrial_events (tenant_id, alarm_key, event_time DESC) WHERE alarm_key IS NOT NULL;
CREATE INDEX industrial_events_xact ON industrial_events (xact_id, id);
ALTER TABLE industrial_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE industrial_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON industrial_events USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- One incident per asset and episode: opened by a critical alarm, a critical limit breach or a
-- failure event; extended while its events keep coming within the grouping window.
CREATE TABLE incidents (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    asset_id bigint NOT NULL,
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    incident_type text NOT NULL CHECK (incident_type IN ('critical_alarm', 'limit_breach', 'equipment_failure',
                                                         'critical_event')),
    severity text NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    started_at timestamptz NOT NULL,
    last_event_at timestamptz NOT NULL,
    event_count integer NOT NULL DEFAULT 0 CHECK (event_count >= 0),
    trigger_event_id bigint,
    acknowledged_at timestamptz,
    acknowledged_by uuid,
    acknowledged_by_name text,
    resolved_at timestamptz,
    resolved_by uuid,
    resolved_by_name text,
    -- what was found and done, written by whoever resolves the incident
    summary text NOT NULL DEFAULT '' CHECK (length(summary) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    FOREIGN KEY (tenant_id, acknowledged_by) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, resolved_by) REFERENCES users (tenant_id, id),
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    CHECK (status = 'open' OR acknowledged_at IS NOT NULL OR resolved_at IS NOT NULL),
    CHECK (last_event_at >= started_at)
);
CREATE INDEX incidents_tenant_started ON incidents (tenant_id, started_at DESC, id DESC);
CREATE INDEX incidents_tenant_asset_started ON incidents (tenant_id, asset_id, started_at DESC);
CREATE INDEX incidents_tenant_status ON incidents (tenant_id, status, severity) WHERE status <> 'resolved';
CREATE INDEX incidents_latest_per_asset ON incidents (tenant_id, asset_id, last_event_at DESC);
ALTER TABLE incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incidents USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Incident ↔ event. Identical events (same flood_key) are summarized in one row: the first
-- occurrence is event_id/event_time, the latest last_event_id/last_event_time, and count says how many.
CREATE TABLE incident_events (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    incident_id bigint NOT NULL,
    event_id bigint NOT NULL,
    event_time timestamptz NOT NULL,
    relation text NOT NULL CHECK (relation IN ('trigger', 'related', 'action')),
    flood_key text NOT NULL CHECK (length(flood_key) BETWEEN 1 AND 64),
    count integer NOT NULL DEFAULT 1 CHECK (count >= 1),
    last_event_id bigint NOT NULL,
    last_event_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, incident_id, flood_key),
    FOREIGN KEY (tenant_id, incident_id) REFERENCES incidents (tenant_id, id)
);
CREATE INDEX incident_events_timeline ON incident_events (tenant_id, incident_id, event_time, id);
CREATE INDEX incident_events_event ON incident_events (tenant_id, event_id);
ALTER TABLE incident_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE incident_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incident_events USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Where each collector left off. tenant_id is null for a cursor over every tenant (the internal
-- collectors and the grouping job scan across tenants in the explicit platform scope); a collector
-- that follows one tenant's source keeps one row per tenant. Only the platform scope sees global rows.
CREATE TABLE blackbox_cursors (
    id bigint GENERATED ALWAYS AS IDENTITY,
    collector text NOT NULL CHECK (collector ~ '^[a-z][a-z0-9_.-]{0,59}$'),
    tenant_id uuid REFERENCES tenants (id),
    position bigint NOT NULL DEFAULT 0,
    position_xid xid8 NOT NULL DEFAULT '0'::xid8,
    position_time timestamptz,
    processed_total bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id),
    UNIQUE NULLS NOT DISTINCT (collector, tenant_id)
);
ALTER TABLE blackbox_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE blackbox_cursors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON blackbox_cursors USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Per-signal state of the limit and quality collectors, kept in the database so it survives
-- restarts and is shared by every ingest process.
CREATE TABLE blackbox_signal_state (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    signal_id bigint NOT NULL,
    limit_state text NOT NULL DEFAULT 'normal'
        CHECK (limit_state IN ('normal', 'warn_low', 'warn_high', 'crit_low', 'crit_high')),
    limit_since timestamptz,
    limit_time timestamptz,          -- time of the last sample evaluated against the limits
    quality_bad boolean NOT NULL DEFAULT false,
    quality_since timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, signal_id),
    FOREIGN KEY (tenant_id, signal_id) REFERENCES signals (tenant_id, id)
);
CREATE INDEX blackbox_signal_state_breached ON blackbox_signal_state (tenant_id, limit_since) WHERE limit_state <> 'normal';
ALTER TABLE blackbox_signal_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE blackbox_signal_state FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON blackbox_signal_state USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Last ingest state seen per integration, so a state change becomes exactly one event.
CREATE TABLE blackbox_integration_state (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    integration_id bigint NOT NULL,
    state text NOT NULL,
    connected boolean NOT NULL,
    reconnects integer NOT NULL DEFAULT 0,   -- a reconnect between two polls still shows as one
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
ALTER TABLE blackbox_integration_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE blackbox_integration_state FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON blackbox_integration_state USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Malformed source records, rejected and counted per tenant, source and reason (no raw record kept:
-- it may hold anything; last_detail is a short description written by the normalizer).
CREATE TABLE blackbox_rejections (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    source_system text NOT NULL CHECK (length(source_system) BETWEEN 1 AND 40),
    reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 60),
    count bigint NOT NULL DEFAULT 0 CHECK (count >= 0),
    first_at timestamptz NOT NULL DEFAULT now(),
    last_at timestamptz NOT NULL DEFAULT now(),
    last_detail text NOT NULL DEFAULT '' CHECK (length(last_detail) <= 300),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source_system, reason)
);
ALTER TABLE blackbox_rejections ENABLE ROW LEVEL SECURITY;
ALTER TABLE blackbox_rejections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON blackbox_rejections USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- The alert and work-order collectors follow these logs in (xact_id, id) order.
CREATE INDEX alert_history_xact ON alert_history (xact_id, id);
CREATE INDEX work_order_history_xact ON work_order_history (xact_id, id);
