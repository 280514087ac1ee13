"""Shared fixtures, loaded by concern from the fix_*.py modules."""

pytest_plugins = ["tests.fix_db", "tests.fix_web", "tests.fix_opcua", "tests.fix_pi", "tests.fix_oidc", "tests.fix_ingest"]
