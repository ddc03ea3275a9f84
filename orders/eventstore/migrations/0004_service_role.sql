-- The role the service runs as, with only what it needs: it appends and reads events (it can
-- never update, delete or truncate them: the triggers of 0001 stay as a second line), writes
-- the read model, and reads the migration ledger. Schema changes, migrations and the
-- projection rebuild (which creates, renames and drops tables) run as the owner instead.
-- NOLOGIN: the README says how to grant it to the login role the service connects as.
--
-- A role belongs to the whole server while grants belong to one database, and migrations of
-- several databases on one server can run at once: the role is created only if missing, and
-- losing a race to create it is fine. Where the migrating user may not create roles (some
-- managed databases), an administrator creates it once by hand, then migrating goes on.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders_service') THEN
        CREATE ROLE orders_service NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database's migration created it a moment ago
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'this user may not create the role orders_service'
            USING HINT = 'as an administrator run: CREATE ROLE orders_service NOLOGIN; '
                         'then migrate again';
END;
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO orders_service', current_schema());
END;
$$;

GRANT SELECT, INSERT ON events TO orders_service;
GRANT SELECT, INSERT, UPDATE ON orders, order_counts, projection_checkpoints TO orders_service;
GRANT SELECT ON schema_migrations TO orders_service;
