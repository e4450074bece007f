"""Helpers shared by the test suites, imported as `tests.support.<module>`.

- processes: free ports, clean environments, real server processes (gunicorn, MLflow), training
- monitoring: promtool and the metric names the API exports
- pulumi_harness / policy_harness: the Pulumi program under mocks, and the CIS policy pack
- testhost / provisioned: the Debian 13 test host that plays the VM, provisioned by the entry point
"""
