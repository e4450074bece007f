"""Facts of the outside watch: a Cloud Monitoring uptime check on the public API URL and its alert.

Prometheus and Alertmanager run on the VM, so they die with it; this check runs from Google's
checkers and pages through Cloud Monitoring's own notification channels (stacks/uptime.py).
"""

from __future__ import annotations

from config import edge
from config.services import SERVICES

# /ready, through the edge: 200 only when the edge, the API and a verified model all work, which
# is what a user needs. (/health would pass with no model loaded; the edge's own health route
# answers loopback only.)
PATH = SERVICES.api.health_path
PORT = edge.PUBLIC_HTTPS_PORT
# The ready body (orjson, no spaces): a 200 from anything else (a parked domain, a captive page)
# fails the check too.
CONTENT = '"status":"ready"'

# How often each checker location probes, and how long it waits. 60 s is the shortest period GCP
# accepts (60, 300, 600 or 900 s); changing it replaces the check (the field is immutable).
PERIOD_SECONDS = 60
TIMEOUT_SECONDS = 10

# Checker regions. Set regions must hold at least 3 locations; USA alone has 3, Europe and Asia
# Pacific one each: 5 locations, so one region's trouble does not page (see FAILING_LOCATIONS).
REGIONS = ("EUROPE", "USA", "ASIA_PACIFIC")

# The standard uptime-check condition (what the console creates): the latest result of each
# checker location within the window, counted where it failed; the policy fires when more than
# FAILING_LOCATIONS locations fail for FAILING_SECONDS.
WINDOW_SECONDS = 1200
FAILING_LOCATIONS = 1
FAILING_SECONDS = 300

# The runbook section the alert's documentation links (docs/RUNBOOK.md, "VM unreachable").
RUNBOOK_ANCHOR = "vm-unreachable-uptime-check"
