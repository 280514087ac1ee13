"""The route contract: every committed route still exists, and every route declares its access."""

from __future__ import annotations

from pathlib import Path

from optria.shell.app import create_app
from tests.fix_web import make_settings
from tests.web.routes_walk import contract_lines, walk

CONTRACT = Path(__file__).with_name("route_contract.txt")


def _app():
    return create_app(make_settings(), database=object())


def test_no_contracted_route_disappeared() -> None:
    listed = [line for line in CONTRACT.read_text().splitlines() if line.strip()]
    assert len(listed) >= 20
    present = set(contract_lines(_app()))
    gone = [line for line in listed if line not in present]
    assert gone == [], f"routes removed or renamed (the contract is additive): {gone}"


def test_every_route_declares_a_permission_or_is_public() -> None:
    undeclared = [f"{r.method} {r.path}" for r in walk(_app()) if r.permission is None and not r.public]
    assert undeclared == [], f"routes without requires(Permission...) or opt=PUBLIC: {undeclared}"


def test_new_routes_are_in_the_contract() -> None:
    listed = set(CONTRACT.read_text().splitlines())
    new = [line for line in contract_lines(_app()) if line not in listed]
    assert new == [], f"run `python scripts/route_contract.py --update` to add: {new}"
