#!/usr/bin/env python3
"""Print or update the committed route contract (tests/web/route_contract.txt).

Routes may be added freely; a listed route that disappears fails the test suite, so
later work stays additive. After adding routes run: python scripts/route_contract.py --update
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
CONTRACT = ROOT / "tests" / "web" / "route_contract.txt"


def current() -> list[str]:
    from optria.config import Settings
    from optria.shell.app import create_app
    from tests.web.routes_walk import contract_lines

    return contract_lines(create_app(Settings(SESSION_SECRET="contract-only-" + "x" * 20), database=object()))


if __name__ == "__main__":
    lines = current()
    if "--update" in sys.argv:
        kept = set(CONTRACT.read_text().split("\n")) if CONTRACT.exists() else set()
        merged = sorted({l for l in kept if l.strip()} | set(lines))
        CONTRACT.write_text("\n".join(merged) + "\n")
        print(f"{len(merged)} routes in {CONTRACT.relative_to(ROOT)}")
    else:
        print("\n".join(lines))
