"""Fixtures (filled in by the connector work)."""
