-- A gap an OPC-UA worker still has to read back from the server's history (a session lost, its
-- HistoryRead not finished): kept here too, so a worker that replaces it — in another process after
-- a lease takeover — starts its backfill there rather than from the newest stored row.
CREATE TABLE ingest_gaps (
    tenant_id uuid NOT NULL,
    integration_id bigint NOT NULL,
    since timestamptz NOT NULL,
    noted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
ALTER TABLE ingest_gaps ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_gaps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_gaps USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));
