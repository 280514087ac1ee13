-- Optimization: analytics and AI runs, the opportunities they find, and the platform owner's
-- proof-of-concept reports.
--
-- A run covers a scope of a tenant's assets (all of them, a unit, one asset, or the assets mapped
-- to one integration). Its status moves queued → running → succeeded | fallback | failed:
-- 'fallback' means an AI run that could not use the model (no key, timeout, invalid answer) and
-- carries the deterministic analytics result instead, with the reason in fallback_reason.
-- A run still queued/running after timeout_s is shown as failed by every reader (the process
-- running it may have stopped) and marked failed by the optimization job.
--
-- inputs holds a summary of the data the run was based on (assets, signal aggregates, open
-- incidents): never a credential, never another tenant's row.

CREATE TABLE optimization_runs (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    scope text NOT NULL CHECK (scope IN ('tenant', 'unit', 'asset', 'integration')),
    scope_id bigint CHECK ((scope = 'tenant') = (scope_id IS NULL)),
    scope_label text NOT NULL DEFAULT '' CHECK (length(scope_label) <= 300),
    engine text NOT NULL CHECK (engine IN ('analytics', 'ai')),
    model text CHECK (model IS NULL OR length(model) <= 200),
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'fallback')),
    -- null for runs started by the platform (the proof of concept) or by a job
    requested_by uuid,
    requested_by_name text NOT NULL CHECK (length(requested_by_name) BETWEEN 1 AND 200),
    origin text NOT NULL DEFAULT 'web' CHECK (origin IN ('web', 'api', 'integration', 'poc', 'job')),
    timeout_s integer NOT NULL DEFAULT 120 CHECK (timeout_s BETWEEN 5 AND 3600),
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    asset_count integer NOT NULL DEFAULT 0 CHECK (asset_count >= 0),
    inputs jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(inputs) = 'object'),
    findings jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(findings) = 'array'),
    recommendations jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(recommendations) = 'array'),
    error text CHECK (error IS NULL OR length(error) <= 2000),
    fallback_reason text CHECK (fallback_reason IS NULL OR length(fallback_reason) <= 1000),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, requested_by) REFERENCES users (tenant_id, id),
    CHECK (status NOT IN ('succeeded', 'failed', 'fallback') OR finished_at IS NOT NULL),
    CHECK (status <> 'fallback' OR (engine = 'ai' AND fallback_reason IS NOT NULL))
);
CREATE INDEX optimization_runs_tenant_created ON optimization_runs (tenant_id, created_at DESC, id DESC);
CREATE INDEX optimization_runs_unfinished ON optimization_runs (created_at) WHERE status IN ('queued', 'running');
ALTER TABLE optimization_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE optimization_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON optimization_runs USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- One row per opportunity or recommendation a run produced for an asset. The current ones of an
-- asset are those not superseded: a finished run supersedes the earlier rows of every asset it covered.
CREATE TABLE optimization_opportunities (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    run_id bigint NOT NULL,
    asset_id bigint NOT NULL,
    source text NOT NULL CHECK (source IN ('analytics', 'ai')),
    kind text NOT NULL CHECK (kind IN ('limit', 'time_to_limit', 'anomaly', 'trend', 'efficiency', 'stale', 'recommendation')),
    severity text NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    rationale text NOT NULL DEFAULT '' CHECK (length(rationale) <= 4000),
    action text NOT NULL DEFAULT '' CHECK (length(action) <= 4000),
    expected_impact text NOT NULL DEFAULT '' CHECK (length(expected_impact) <= 1000),
    impact_value double precision,
    impact_unit text CHECK (impact_unit IS NULL OR length(impact_unit) <= 40),
    confidence double precision CHECK (confidence BETWEEN 0 AND 1),
    -- the figures behind it: signal id/role, recent and baseline statistics, limits, slope
    evidence jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(evidence) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    superseded_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES optimization_runs (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id)
);
CREATE INDEX optimization_opportunities_current ON optimization_opportunities (tenant_id, asset_id)
    WHERE superseded_at IS NULL;
CREATE INDEX optimization_opportunities_run ON optimization_opportunities (tenant_id, run_id);
ALTER TABLE optimization_opportunities ENABLE ROW LEVEL SECURITY;
ALTER TABLE optimization_opportunities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON optimization_opportunities USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- The platform owner's proof-of-concept reports. Platform-level: no tenant owns them (demo_tenant_id
-- names the tenant a report exercised), so only the explicit platform scope may read or write them.
-- steps: [{"key", "title", "status", "started_at", "duration_ms", "message", "evidence_url", "details"}].
CREATE TABLE poc_reports (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'passed', 'failed')),
    origin text NOT NULL DEFAULT 'web' CHECK (origin IN ('web', 'cli', 'test')),
    demo_tenant_id uuid REFERENCES tenants (id),
    demo_tenant_slug text,
    requested_by uuid REFERENCES users (id),
    requested_by_name text NOT NULL CHECK (length(requested_by_name) BETWEEN 1 AND 200),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    deadline_at timestamptz NOT NULL,
    duration_ms integer,
    steps jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(steps) = 'array'),
    summary text NOT NULL DEFAULT '' CHECK (length(summary) <= 2000),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX poc_reports_started ON poc_reports (started_at DESC, id DESC);
ALTER TABLE poc_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE poc_reports FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_only ON poc_reports
    USING (coalesce(current_setting('optria.platform', true), '') <> '')
    WITH CHECK (coalesce(current_setting('optria.platform', true), '') <> '');
