#!/usr/bin/env python3
"""Keep the gettext catalogs complete.

  python scripts/i18n.py check    exit 1 if any msgid used in code/templates lacks an Arabic translation
  python scripts/i18n.py update   add new msgids to both catalogs (Arabic left empty for a translator)
  python scripts/i18n.py set < file.tsv   fill Arabic translations from msgid<TAB>text lines

Besides ``_()`` calls, English strings that reach templates through data (nav labels,
role labels, error texts) are listed in optria.shell.i18n_sources so they are extracted too.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "src" / "optria" / "web" / "locale"
sys.path.insert(0, str(ROOT / "src"))


def used_msgids() -> set[str]:
    ids: set[str] = set()
    method_map = [("src/**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _file, _line, message, _comments, _ctx in extract_from_dir(str(ROOT), method_map, options):
        if isinstance(message, tuple):
            ids.update(m for m in message if m)
        elif message:
            ids.add(message)
    from optria.shell.i18n_sources import data_msgids

    ids.update(data_msgids())
    return ids


def load(lang: str) -> Catalog:
    with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def missing(lang: str = "ar") -> list[str]:
    cat = load(lang)
    return sorted(m for m in used_msgids() if not (cat.get(m) and cat.get(m).string))


def update() -> None:
    ids = used_msgids()
    for lang in ("ar", "en"):
        path = LOCALE / lang / "LC_MESSAGES" / "messages.po"
        cat = load(lang) if path.exists() else Catalog(locale=lang)
        for m in sorted(ids):
            if cat.get(m) is None:
                cat.add(m, string=m if lang == "en" else "")
        with path.open("wb") as f:
            write_po(f, cat, width=0, sort_output=True, omit_header=False)


def set_from_tsv(lines: list[str]) -> None:
    """Fill Arabic translations from ``msgid<TAB>translation`` lines (a translator's hand-off format)."""
    update()
    path = LOCALE / "ar" / "LC_MESSAGES" / "messages.po"
    cat = load("ar")
    for line in lines:
        if "\t" not in line:
            continue
        msgid, text = line.rstrip("\n").split("\t", 1)
        if cat.get(msgid) is not None:
            cat[msgid].string = text
        else:
            cat.add(msgid, string=text)
    with path.open("wb") as f:
        write_po(f, cat, width=0, sort_output=True, omit_header=False)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    if cmd == "update":
        update()
    if cmd == "set":
        set_from_tsv(sys.stdin.readlines())
    gaps = missing()
    for m in gaps:
        print(f"missing ar: {m!r}")
    sys.exit(1 if gaps and cmd == "check" else 0)
