-- The ingest processes alive now, each renewing its row as it renews its leases. A process takes
-- at most its fair share of the integrations (ceil(integrations / live processes)) and hands
-- the excess over, so a process started beside a busy one shares the work at once instead of
-- idling until the first one dies. No tenant owns a row: platform scope only.
CREATE TABLE ingest_processes (
    worker_id text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
ALTER TABLE ingest_processes ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_processes FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_only ON ingest_processes
    USING (coalesce(current_setting('optria.platform', true), '') <> '')
    WITH CHECK (coalesce(current_setting('optria.platform', true), '') <> '');
