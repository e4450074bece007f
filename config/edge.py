"""The edge proxy in front of the API: its ports, limits and timeouts, and the errors it answers itself.

gunicorn's sync workers serve one request at a time each, so a client that sends slowly holds a
worker for as long as it likes. The edge (nginx) reads every request whole, within the limits
below, before it reaches gunicorn, and terminates TLS. Its nginx.conf is rendered from here
(stacks/edge_config.py); the API's own limits come from the same values, so the edge never lets
through what the API would refuse, nor refuses what the API accepts.
"""

from __future__ import annotations

from config.app_settings import ApiSettings

# The compose service name of the edge.
SERVICE_NAME = "edge"
# The stack's network, with a fixed address for the edge: gunicorn trusts X-Forwarded-* headers
# from that address only. Outside Docker's default address pools (172.17-31.x, 192.168.x) and the
# VPC's subnet, so it collides with neither.
STACK_SUBNET = "10.213.0.0/24"
EDGE_ADDRESS = "10.213.0.10"

# Ports inside the edge container: unprivileged, so nginx runs as a non-root user without
# CAP_NET_BIND_SERVICE. The compose file publishes them as the public 80 and 443.
HTTP_PORT = 8080
HTTPS_PORT = 8443
PUBLIC_HTTP_PORT = 80
PUBLIC_HTTPS_PORT = 443

# The API's own body limit (MLOPS_MAX_BODY_BYTES' default) is the edge's limit too.
MAX_BODY_BYTES: int = ApiSettings.model_fields["max_body_bytes"].get_default()
# gunicorn refuses request lines over 8190 bytes; nginx's large header buffers hold that much.
MAX_HEADER_BYTES = 8192
HEADER_BUFFERS = 4
# A client has this long to send its headers, and between two reads of its body; a stalled
# client is dropped without ever reaching gunicorn.
CLIENT_TIMEOUT_SECONDS = 10
KEEPALIVE_SECONDS = 15
# Longer than gunicorn's worker timeout (MLOPS_TIMEOUT_SECONDS), so gunicorn answers first.
UPSTREAM_TIMEOUT_SECONDS = 35
# How long nginx keeps a resolved upstream address: a restarted API container with a new address
# is found again within this time.
RESOLVER_VALID_SECONDS = 5
# Docker's embedded DNS server on user-defined networks.
DOCKER_DNS = "127.0.0.11"

# Where certificates for a domain come from by default: Let's Encrypt's production directory.
# Its staging directory (https://acme-staging-v02.api.letsencrypt.org/directory) suits trials.
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"

# Answered by the edge itself on its HTTP port, from its own container only (the healthcheck).
HEALTH_PATH = "/.edge/health"
# Where Grafana is served when the stack makes it public.
GRAFANA_PATH = "/grafana/"

# Paths inside the edge container.
CERT_DIR = "/etc/edge/certs"
# One volume holds the ACME webroot and certbot's account and certificates.
STATE_DIR = "/var/lib/edge"
ACME_WEBROOT = f"{STATE_DIR}/acme"
ACME_STATE = f"{STATE_DIR}/letsencrypt"
RUNTIME_DIR = "/run/edge"
CONFIG_FILE = "/etc/edge/nginx.conf"
# A CA bundle to trust for the ACME server itself (only a private ACME CA needs one; empty file:
# none). The stack role writes it under the stack root; compose mounts it here.
ACME_CA_FILE = "/etc/edge/acme-ca.pem"
ACME_CA_HOST_FILE = "config/edge/acme-ca.pem"
# Optional locations (Grafana) the entrypoint writes at start, from the environment.
OPTIONAL_LOCATIONS_DIR = f"{RUNTIME_DIR}/locations"

# Errors nginx answers itself, in the API's error shape: status -> (reason, message).
EDGE_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is not valid HTTP"),
    404: ("not_found", "no such endpoint"),
    408: ("request_timeout", "the request was not received in time"),
    413: ("body_too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes"),
    414: ("uri_too_long", "the request line is too long"),
    431: ("request_header_too_large", "the request headers are too large"),
    494: ("request_header_too_large", "the request headers are too large"),
    502: ("upstream_unavailable", "the API is not reachable; retry shortly"),
    503: ("upstream_unavailable", "the API is not reachable; retry shortly"),
    504: ("upstream_timeout", "the API did not answer in time"),
}
# Paths the edge never forwards: metrics are scraped by Prometheus on the stack's own network.
PRIVATE_PATHS = ("/metrics",)
