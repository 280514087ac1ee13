-- Row-level security read once per statement instead of once per row.
--
-- Every tenant table's policy was optria_tenant_visible(tenant_id): PostgreSQL inlines it as a
-- filter whose two current_setting() calls and uuid cast ran for every row a query read (the
-- twin's card grid reads 3,600 rows of four tables: 10–20 ms of its 25–50 ms went to them). The
-- same test now reads the two settings in scalar sub-selects, which PostgreSQL evaluates once per
-- statement (InitPlans), leaving one comparison per row. The rows visible and the checks on
-- writes are the same; a new tenant table's policy takes this form (tests/db/test_rls.py).
CREATE FUNCTION optria_platform_scope() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('optria.platform', true), '') <> ''
$$;

CREATE FUNCTION optria_scope_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('optria.tenant_id', true), '')::uuid
$$;

DO $$
DECLARE
    p record;
    col text;
    test text;
BEGIN
    FOR p IN SELECT schemaname, tablename, qual, with_check FROM pg_policies
             WHERE policyname = 'tenant_isolation' ORDER BY tablename LOOP
        col := substring(p.qual FROM '^optria_tenant_visible\((\w+)\)$');
        IF col IS NULL OR p.with_check IS DISTINCT FROM p.qual THEN
            RAISE EXCEPTION 'tenant_isolation on %.% is not optria_tenant_visible(column): %',
                p.schemaname, p.tablename, p.qual;
        END IF;
        test := format('(SELECT optria_platform_scope()) OR (%1$I IS NOT NULL AND %1$I = (SELECT optria_scope_tenant()))',
                       col);
        EXECUTE format('ALTER POLICY tenant_isolation ON %I.%I USING (%s) WITH CHECK (%s)',
                       p.schemaname, p.tablename, test, test);
    END LOOP;
END $$;
