"""Shared fixtures, loaded by concern from every tests/fix_*.py module (fix_db, fix_web, fix_opcua, ...)."""

from pathlib import Path

pytest_plugins = [f"tests.{p.stem}" for p in sorted(Path(__file__).parent.glob("fix_*.py"))]
