"""Grafana dashboards as code (grafana-foundation-sdk).

`make generate` (stacks/generate.py) writes dashboards/json/ from `dashboards.build`.
"""
