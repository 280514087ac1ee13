-- Each ingest process announces how many integrations it may run (--max-leases). The fair share
-- is then a water level over the live processes' capacities: a process that may run fewer than
-- an even split takes what it may and the others take the rest, so no integration is left
-- unleased because the split assumed room that one process does not have. 0: a process that
-- runs only the background jobs.
ALTER TABLE ingest_processes ADD COLUMN max_leases integer NOT NULL DEFAULT 200 CHECK (max_leases >= 0);
