-- What each asset's signals amount to (how many, with data, current; newest sample; when the
-- first / last current one goes stale), as the scoring job judged them on its last pass.
--
-- The twin's card grid needs these figures for every card, and computing them reads every
-- mapped signal of the page's assets (3,600 rows of four tables for 36 cards of 100 signals):
-- most of the page's database time. The scoring job reads the same rows every couple of seconds
-- for every asset whose data moved, so it writes the figures here, with the mappings a card shows
-- first (`shown`, in the card's order), and the grid reads one row and a few signals per card.
-- A row counts only while it can still be right:
-- - until valid_until: a few scoring intervals after it was computed (a stopped job leaves no
--   figures that look current), and no later than the first heartbeat lapse it relied on;
-- - while every source in `sources` is live (connected, heartbeat fresh) exactly when it is in
--   `live_sources`: a source that connects or drops changes what counts as current;
-- - while the asset's mappings are as they were: any change to them deletes the row (trigger).
-- Without a row that counts, the grid computes the figures from the signals as before.
CREATE TABLE asset_signal_summary (
    tenant_id uuid NOT NULL,
    asset_id bigint NOT NULL,
    computed_at timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    n_signals integer NOT NULL CHECK (n_signals >= 0),
    n_with_data integer NOT NULL CHECK (n_with_data >= 0),
    n_fresh integer NOT NULL CHECK (n_fresh >= 0),
    newest timestamptz,
    fresh_until timestamptz,
    all_stale_at timestamptz,
    sources bigint[] NOT NULL DEFAULT '{}',
    live_sources bigint[] NOT NULL DEFAULT '{}',
    shown bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, asset_id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE asset_signal_summary ENABLE ROW LEVEL SECURITY;
ALTER TABLE asset_signal_summary FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON asset_signal_summary
    USING ((SELECT optria_platform_scope()) OR (tenant_id IS NOT NULL AND tenant_id = (SELECT optria_scope_tenant())))
    WITH CHECK ((SELECT optria_platform_scope()) OR (tenant_id IS NOT NULL AND tenant_id = (SELECT optria_scope_tenant())));

-- A mapping added, edited or removed: the figures of its asset (old and new) no longer hold.
CREATE FUNCTION optria_forget_signal_summary() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM asset_signal_summary x USING old_rows o WHERE x.tenant_id = o.tenant_id AND x.asset_id = o.asset_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        DELETE FROM asset_signal_summary x USING new_rows n WHERE x.tenant_id = n.tenant_id AND x.asset_id = n.asset_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER forget_signal_summary_insert AFTER INSERT ON external_signal_mappings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION optria_forget_signal_summary();
CREATE TRIGGER forget_signal_summary_update AFTER UPDATE ON external_signal_mappings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION optria_forget_signal_summary();
CREATE TRIGGER forget_signal_summary_delete AFTER DELETE ON external_signal_mappings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION optria_forget_signal_summary();
