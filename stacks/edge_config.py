"""nginx.conf of the edge proxy, rendered from config/edge.py and the service catalog.

`make generate` writes the stack's copy to deploy/edge/nginx.conf (the edge image holds it). Tests
render the same text for a loopback layout (`EdgeLayout.for_test`) and run Debian's nginx with it
in front of a real gunicorn: one renderer, two layouts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from config import edge
from config.services import SERVICES


@dataclass(frozen=True)
class EdgeLayout:
    """Where the edge listens, finds its upstream and keeps its files."""

    upstream: str  # host:port of the API
    grafana_upstream: str = f"{SERVICES.grafana.name}:{SERVICES.grafana.port}"
    http_port: int = edge.HTTP_PORT
    https_port: int = edge.HTTPS_PORT
    cert_dir: str = edge.CERT_DIR
    acme_webroot: str = edge.ACME_WEBROOT
    runtime_dir: str = edge.RUNTIME_DIR
    # DNS server to re-resolve the upstream name with; None when `upstream` is an address.
    resolver: str | None = edge.DOCKER_DNS
    # Address to listen on; empty: every address of the container.
    bind: str = ""

    def listen(self, port: int) -> str:
        return f"{self.bind}:{port}" if self.bind else str(port)

    @classmethod
    def stack(cls) -> EdgeLayout:
        return cls(upstream=f"{SERVICES.api.name}:{SERVICES.api.port}")


# Errors raised before nginx has a URI (a refused request line or header) can only go to an error
# page given as a URI; the others go to named locations, which keep a request's unread body out
# of the way (an oversized body refused early still gets its JSON page).
ERROR_PREFIX = "/.edge-error/"
BEFORE_URI = frozenset({400, 414, 494})


def _error_target(status: int) -> str:
    return f"{ERROR_PREFIX}{status}" if status in BEFORE_URI else f"@error_{status}"


def _error_pages() -> str:
    lines = []
    for status in edge.EDGE_ERRORS:
        # 494 is nginx's own code for "header too large", sent as 400 unless renamed: clients
        # get the standard 431.
        rename = "=431 " if status == 494 else ""
        lines.append(f"error_page {status} {rename}{_error_target(status)};")
    for status, (reason, message) in edge.EDGE_ERRORS.items():
        shown = 431 if status == 494 else status
        body = json.dumps({"error": {"status": shown, "reason": reason, "message": message}})
        where = f"= {_error_target(status)}" if status in BEFORE_URI else _error_target(status)
        internal = "internal; " if status in BEFORE_URI else ""
        lines.append(
            f"location {where} {{ {internal}default_type application/json; "
            f"add_header Cache-Control no-store always; return {shown} '{body}'; }}"
        )
    return "\n        ".join(lines)


def _proxy(layout: EdgeLayout, upstream: str, variable: str) -> str:
    # With a resolver, the upstream goes through a variable so nginx resolves it again after
    # `valid` seconds (a restarted container may come back on a new address).
    if layout.resolver:
        target = f"set ${variable} {upstream};\n            proxy_pass http://${variable};"
    else:
        target = f"proxy_pass http://{upstream};"
    return f"""{target}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-Id $request_id;
            proxy_connect_timeout 5s;
            proxy_read_timeout {edge.UPSTREAM_TIMEOUT_SECONDS}s;
            proxy_send_timeout {edge.UPSTREAM_TIMEOUT_SECONDS}s;
            # The upstream's own answers (the API's 4xx JSON errors included) pass through unchanged.
            proxy_intercept_errors off;
            proxy_next_upstream off;"""


def _private_locations() -> str:
    return "\n        ".join(f"location = {path} {{ return 404; }}" for path in edge.PRIVATE_PATHS)


def _http_server(layout: EdgeLayout) -> str:
    """Port 80: ACME challenges, the container's own health check, and a redirect to HTTPS."""
    return f"""server {{
        listen {layout.listen(layout.http_port)} default_server;
        location /.well-known/acme-challenge/ {{
            root {layout.acme_webroot};
        }}
        location = {edge.HEALTH_PATH} {{
            # `if`, not allow/deny: `return` runs before nginx's access checks would.
            if ($remote_addr != "127.0.0.1") {{
                return 404;
            }}
            default_type application/json;
            return 200 '{{"status": "alive"}}';
        }}
        location / {{
            return 308 https://$host$request_uri;
        }}
    }}"""


def _https_server(layout: EdgeLayout) -> str:
    """Port 443: TLS, the edge's own error answers, and the API (and Grafana when public)."""
    return f"""server {{
        # `listen ... http2` is the form nginx 1.22 (Debian 12, the edge image's base) knows.
        listen {layout.listen(layout.https_port)} ssl http2 default_server;
        ssl_certificate {layout.cert_dir}/fullchain.pem;
        ssl_certificate_key {layout.cert_dir}/privkey.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:TLS:10m;
        ssl_session_tickets off;
        add_header Strict-Transport-Security "max-age=63072000" always;

        {_error_pages()}
        {_private_locations()}
        # Optional services the stack makes public (Grafana), written at start by the entrypoint.
        include {layout.runtime_dir}/locations/*.conf;
        location / {{
            {_proxy(layout, layout.upstream, "api_upstream")}
        }}
    }}"""


def render(layout: EdgeLayout) -> str:
    """The whole nginx.conf for `layout`."""
    runtime = layout.runtime_dir
    resolver = (
        f"resolver {layout.resolver} valid={edge.RESOLVER_VALID_SECONDS}s ipv6=off;"
        if layout.resolver
        else ""
    )
    return f"""# Generated by `make generate` (stacks/edge_config.py) from config/edge.py. Do not edit.
worker_processes auto;
pid {runtime}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    default_type application/octet-stream;
    access_log off;
    server_tokens off;
    client_body_temp_path {runtime}/client_body;
    proxy_temp_path {runtime}/proxy;
    fastcgi_temp_path {runtime}/fastcgi;
    uwsgi_temp_path {runtime}/uwsgi;
    scgi_temp_path {runtime}/scgi;
    {resolver}

    # Whole requests are read here, within these limits, before gunicorn sees them.
    client_max_body_size {edge.MAX_BODY_BYTES};
    client_body_buffer_size {edge.MAX_BODY_BYTES};
    client_header_buffer_size 1k;
    large_client_header_buffers {edge.HEADER_BUFFERS} {edge.MAX_HEADER_BYTES};
    client_header_timeout {edge.CLIENT_TIMEOUT_SECONDS}s;
    client_body_timeout {edge.CLIENT_TIMEOUT_SECONDS}s;
    send_timeout {edge.CLIENT_TIMEOUT_SECONDS}s;
    keepalive_timeout {edge.KEEPALIVE_SECONDS}s;
    reset_timedout_connection on;
    proxy_request_buffering on;
    proxy_buffering on;

    {_http_server(layout)}

    {_https_server(layout)}
}}
"""


def grafana_location(layout: EdgeLayout) -> str:
    """The location that serves Grafana under its sub-path, included only when Grafana is public."""
    return f"""# Generated by `make generate` (stacks/edge_config.py) from config/. Do not edit.
location {edge.GRAFANA_PATH} {{
            {_proxy(layout, layout.grafana_upstream, "grafana_upstream")}
}}
"""
