"""The site icon: browsers ask for ``/favicon.ico`` on every first visit, so it is answered (the brand's
diamond as SVG, which every current browser reads from that address) rather than logged as a 404."""

from __future__ import annotations

from litestar import Response, get

from optria.identity.guards import PUBLIC

ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0f1b2d"/>'
        '<path d="M16 5 27 16 16 27 5 16Z" fill="#2fd08a"/></svg>')


@get("/favicon.ico", opt=PUBLIC, name="favicon", include_in_schema=False)
async def favicon() -> Response:
    return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


ROUTES = [favicon]
