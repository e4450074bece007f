"""Security headers of the HTML page (GET /): what it may run, load and be framed by."""

from __future__ import annotations

# The page runs only its own inline script and style (a fresh nonce per answer), talks only to
# this server, and may not be framed (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(nonce=nonce),
        "X-Frame-Options": "DENY",
    }


PAGE_HEADERS = tuple(page_headers(""))
