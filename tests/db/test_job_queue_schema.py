"""The job queue's tables come from procrastinate's own schema file, applied by our migration runner."""

from __future__ import annotations

from importlib import metadata, resources

import psycopg

from optria.migrations import MIGRATIONS_DIR

MIGRATION = MIGRATIONS_DIR / "0012_job_queue.sql"
PROCRASTINATE_SCHEMA = "3.10.0"     # the version whose schema.sql 0012 holds


def test_the_migration_holds_the_installed_procrastinates_schema() -> None:
    installed = metadata.version("procrastinate")
    assert installed == PROCRASTINATE_SCHEMA, (
        f"procrastinate {installed} is installed but 0012_job_queue.sql holds the schema of {PROCRASTINATE_SCHEMA}: "
        "add its sql/migrations/ files newer than that as new numbered migrations, then update PROCRASTINATE_SCHEMA")
    text = MIGRATION.read_text()
    assert f"procrastinate {PROCRASTINATE_SCHEMA}" in text.splitlines()[0]
    schema = (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")
    assert text.endswith(schema) and text[: -len(schema)].strip().splitlines()[-1].startswith("--")


def test_the_app_role_can_queue_and_take_a_job(owner_conn: psycopg.Connection) -> None:
    with owner_conn.transaction():
        owner_conn.execute("SET LOCAL ROLE optria_app")
        job_id = owner_conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args) VALUES ('default', 'probe', '{}') "
            "RETURNING id").fetchone()[0]
        worker_id = owner_conn.execute("SELECT procrastinate_register_worker_v1()").fetchone()[0]
        taken = owner_conn.execute("SELECT id FROM procrastinate_fetch_job_v2(ARRAY['default'], %s)",
                                   [worker_id]).fetchone()[0]
        assert taken == job_id
        owner_conn.execute("SELECT procrastinate_finish_job_v1(%s, 'succeeded', true)", [job_id])
        assert owner_conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()[0] == 0
