"""Runs scripts/smoke_test_e2e.py against a real granian server on a fresh, seeded database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from optria.db import Database
from optria.demo.seed import seed_demo

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_smoke_script_passes_against_granian(db: Database, db_dsn: str) -> None:
    await seed_demo(db)
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": "smoke-secret-" + "y" * 30, "APP_ENV": "test"}
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "smoke_test_e2e.py")], env=env, capture_output=True,
                       text=True, timeout=240)
    print(r.stdout[-4000:])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " 0 failed" in r.stdout
