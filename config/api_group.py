"""Facts of the API group (apiReplicas > 1) and its load balancer that several places must agree on.

The firewall plan, the policy pack and the GCP resources all read Google's ranges from here; the
health check, autohealing and the autoscaler read their timings from here.
"""

from __future__ import annotations

# The network tag of the stack's own VM (the management VM once the API scales out): its firewall
# rules target it, and the policy pack knows it as the one VM with a public address (the edge's).
VM_TAG = "mlops-vm"

# Where Google's health checkers and the external Application Load Balancer's proxies (Google Front
# Ends) connect from: "Firewall rules" of cloud.google.com/load-balancing/docs/health-checks, and
# the "Firewall rules" of the external Application Load Balancer's setup guide. Nothing else ever
# needs the replicas' API port from outside the VPC.
GOOGLE_FRONT_END_RANGES = ("35.191.0.0/16", "130.211.0.0/22")

# The instance group's named port: the backend service sends to it; it maps to the API's port.
NAMED_PORT = "http"

# Health check on the API's /ready (config/services.py), for the backend and for autohealing.
# Unhealthy after 3 misses 10 s apart: a replica that stops answering leaves the backend within
# ~30 s; 2 answers bring it back.
HEALTH_CHECK_INTERVAL_SECONDS = 10
HEALTH_CHECK_TIMEOUT_SECONDS = 5
HEALTHY_THRESHOLD = 2
UNHEALTHY_THRESHOLD = 3
# A new replica boots Debian, installs Docker from Debian's archive, pulls the API image and loads
# and verifies the model before /ready answers: some 3-5 minutes. Autohealing waits this long
# before it judges a new VM (else it would recreate every replica in a loop), and the autoscaler
# ignores a new VM's CPU (busy installing) for as long.
BOOT_SECONDS = 600

# The backend service lets in-flight predictions finish on a replica that is leaving (scale-in,
# rolling replacement) for this long; a prediction takes milliseconds, a slow client seconds.
CONNECTION_DRAINING_SECONDS = 30
# The load balancer's wait for a replica's answer: above gunicorn's worker timeout would be moot.
BACKEND_TIMEOUT_SECONDS = 30

# Zones the regional group spreads over (the first of the region's zones, by name). A regional
# group's max_surge_fixed must be 0 or at least its number of zones; the rolling update surges by
# exactly one replica per zone.
GROUP_ZONE_COUNT = 3

# The self-signed certificate of a load balancer without a domain: renewed (replaced on the next
# `pulumi up`) 30 days before the year ends.
SELF_SIGNED_VALIDITY_HOURS = 365 * 24
SELF_SIGNED_EARLY_RENEWAL_HOURS = 30 * 24
