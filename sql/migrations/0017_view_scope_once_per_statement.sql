-- The views that carry the tenant test themselves (signal_samples_tenant; on the timescale tier
-- signal_1m and signal_1h over the continuous aggregates) read the scope once per statement too,
-- as the policies do since 0016: their WHERE optria_tenant_visible(tenant_id) ran for every row
-- under the view — on the timescale tier every raw sample of the aggregates' real-time part (a
-- twin page's sparklines: 158,000 rows, 336 ms against 170 ms with the test read once).
--
-- optria_scope_views() rewrites every such view in place (same columns, options and grants); the
-- timescale-tsl migrations that define views call it again after them.
CREATE FUNCTION optria_scope_views() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    body text;
    n integer := 0;
BEGIN
    FOR v IN SELECT c.oid::regclass AS name, c.reloptions, pg_get_viewdef(c.oid) AS def
             FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace
               AND pg_get_viewdef(c.oid) LIKE '%optria_tenant_visible(%' ORDER BY 1 LOOP
        body := regexp_replace(rtrim(v.def, E'; \n'), 'optria_tenant_visible\(([A-Za-z_][A-Za-z0-9_.]*)\)',
                               '((SELECT optria_platform_scope()) OR (\1 IS NOT NULL AND \1 = (SELECT optria_scope_tenant())))',
                               'g');
        EXECUTE format('CREATE OR REPLACE VIEW %s %s AS %s', v.name,
                       CASE WHEN v.reloptions IS NULL THEN '' ELSE 'WITH (' || array_to_string(v.reloptions, ', ') || ')' END,
                       body);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

SELECT optria_scope_views();
