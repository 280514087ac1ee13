"""What a reader sees on an Arabic page, checked in the browser: no Latin-only sentence among the visible
text, and mixed-direction runs isolated so they read in order.

The only Latin text an Arabic page may show is in ``ALLOWED``: product and protocol names, the demo
plant's tag, code and site names, names people gave (the demo tenant, its integrations, user names),
identifiers a user must type as they are (environment variables, role codes, URLs, model names).
Everything else a page says must be in Arabic. Not helpers of the product: only the tests use them.
"""

from __future__ import annotations

import re

# Explicit exceptions, as regular expressions matched against a visible text node (they are removed
# before the node is judged).
def _demo_names() -> list[str]:
    """Names the demo seed gave its sites, units and assets (English names, beside their Arabic ones)."""
    from optria.demo.plant import ASSETS, SITES

    names = [a.name for a in ASSETS] + [s.name for s in SITES] + [u[1] for s in SITES for u in s.units]
    return [re.escape(n) for n in sorted(names, key=len, reverse=True)]


ALLOWED: tuple[str, ...] = (
    # identifiers first (they contain names removed below): node ids, tag paths, addresses, emails
    r"\bns=\d+;s=\S+", r"\b[A-Za-z]+(?:\.[A-Za-z]+){1,2}\.[A-Z]{1,3}-\d{3}\.[A-Za-z]+\b", r"[a-z][a-z+.-]*://\S+",
    r"\S+@\S+\.\S+", r"\b[A-Z][a-z]+/[A-Z][A-Za-z_]+\b",
    # names people gave, longest first (before the product names some of them contain)
    r"Ras Tanura OPC-UA", r"Abqaiq PI Web API", r"Demo ARAMCO", r"Platform Owner", r"demo-aramco", *_demo_names(),
    # product, protocol and standard names
    r"OPTRIA IQ", r"OPC-UA", r"PI Web API", r"PostgreSQL", r"TimescaleDB", r"Microsoft Entra ID", r"Microsoft Entra",
    r"Entra ID", r"OpenAI", r"ISA-18\.2", r"\bSAP\b", r"\bCSV\b", r"\bJSON\b", r"\bSQL\b", r"\bPI\b", r"\bUTC\b",
    r"\bOIDC\b", r"\bHTTPS?\b", r"Prometheus", r"English",
    # the demo plant: tag paths, asset / site / unit codes, the PI data server, the tenant and integration names
    r"\b[A-Z]{1,3}-\d{3}\b", r"OPTRIA-PI-DEMO",
    # an OPC-UA server's own browse names (source data, like tag names)
    r"\b(?:Server|Aliases|Plant|Objects|Types|Views)\b",
    r"\bRasTanura\b", r"\bAbqaiq\b", r"\bCrudeUnit\b", r"\bUtilities\b", r"\bStabilization\b", r"\bGasCompression\b",
    r"\b(?:owner|admin|optimizer|reliability|engineer|viewer)\b",
    # identifiers typed or read as they are: environment variables, role codes, addresses, model and tier names
    r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", r"\b(?:tenant_admin|optimization_engineer|reliability_engineer|platform_owner)\b",
    r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", r"gpt-[\w.-]+",
    # (longest alternative first: "timescale" alone would match the start of "timescale-apache" and leave "apache")
    r"\b(?:postgres|timescale-apache|timescale|development|production|test)\b", r"\bvm:\d+:\w+\b", r"\bns=\d+;s=\S+",
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
)
ARABIC = re.compile(r"[\u0600-\u06FF]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

# Visible text nodes of the page with where they sit (an element path), skipping what a reader cannot see.
_TEXT_NODES = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  // literal syntax a user types as it is (<code>, <pre>, <kbd>) is not a sentence
  const skip = new Set(["SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT", "TITLE", "OPTION", "CODE", "PRE", "KBD", "SAMP"]);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.replace(/\\s+/g, " ").trim();
    if (!text) continue;
    const el = n.parentElement;
    if (!el || skip.has(el.tagName) || el.closest("code, pre, kbd, samp")) continue;
    if (el.closest("details:not([open]) > :not(summary)")) continue;   // folded away: not seen until opened
    if (typeof el.checkVisibility === "function" && !el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 && rect.height === 0) continue;
    let path = [], e = el;
    for (let i = 0; e && i < 4; i++, e = e.parentElement) {
      path.push(e.tagName.toLowerCase() + (e.getAttribute("data-testid") ? "[" + e.getAttribute("data-testid") + "]" : ""));
    }
    out.push([text, path.join("<")]);
  }
  return out;
}"""


def judge(text: str) -> bool:
    """True when ``text`` is a Latin-only sentence: no Arabic letter, and a Latin word left once the
    allowed names are taken out."""
    if ARABIC.search(text):
        return False
    rest = text
    for pattern in ALLOWED:
        rest = re.sub(pattern, " ", rest)
    return bool(LATIN_WORD.search(rest))


def latin_sentences(page) -> list[str]:
    """The visible texts of ``page`` that are Latin-only sentences (each with its element path)."""
    return [f"{text!r} at {path}" for text, path in page.evaluate(_TEXT_NODES) if judge(text)]


# Boxes of elements, for reading order: in a right-to-left line the first part of a sentence is rightmost.
_BOXES = """(els) => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; })"""
# Per element, the line fragments it is drawn in (an inline element that wraps has several).
_FRAGMENTS = """(els) => els.map(e => Array.from(e.getClientRects()).map(r => [r.left, r.right, r.top, r.bottom]))"""


def boxes(locator) -> list[tuple[float, float, float, float]]:
    return [tuple(b) for b in locator.evaluate_all(_BOXES)]


def reads_right_to_left(locator) -> bool:
    """Whether the elements of ``locator`` (in document order) follow each other from right to left: where
    one ends and the next begins on the same line, the next stands left of it. At least two elements, and
    at least one such pair on a shared line (else nothing was checked)."""
    frags = [f for f in locator.evaluate_all(_FRAGMENTS) if f]
    compared = 0
    for before, after in zip(frags, frags[1:]):
        (l0, r0, t0, _), (l1, r1, t1, _) = before[-1], after[0]
        if abs(t1 - t0) < 4:
            compared += 1
            if not r1 <= l0 + 1:
                return False
    return len(frags) >= 2 and compared >= 1


def fragments(locator) -> list:
    """For assertion messages: each element's line fragments."""
    return locator.evaluate_all(_FRAGMENTS)
