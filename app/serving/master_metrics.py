"""Metrics the gunicorn master writes itself: model swaps (SIGHUP or the alias watch).

The master must not import app/serving/metrics.py: its gauges (`mlserve_model_ready`, livemin)
would get a value from the master's pid, which never serves a model. So the master makes only
this counter, in its own multiprocess file (`counter_<master pid>.db`); the workers' `/metrics`
reads it like any file of the directory. Made lazily, once gunicorn_conf has set
PROMETHEUS_MULTIPROC_DIR; workers forked later inherit it at 0 in their own files, which adds
nothing to the sum.
"""

from __future__ import annotations

import functools
from enum import StrEnum

from prometheus_client import Counter

from app.serving import metric_values

NAMESPACE = "mlserve"  # the same as app.serving.metrics.NAMESPACE (tests/unit checks it)


class SwapOutcome(StrEnum):
    LOADED = "loaded"  # a different version verified and pinned: workers are being replaced
    REFUSED = "refused"  # the new version failed verification: the old one keeps serving


@functools.cache
def _swaps() -> Counter:
    metric_values.install()  # the master's values go to its own file, like a worker's
    return Counter(
        "model_swaps",
        "Model changes the API master handled (SIGHUP or alias watch), by outcome.",
        ["outcome"],
        namespace=NAMESPACE,
    )


def prepare() -> None:
    """Make the counter with both outcomes at 0, so the first swap is an increase Prometheus sees."""
    for outcome in SwapOutcome:
        _swaps().labels(outcome.value)


def record_swap(outcome: SwapOutcome) -> None:
    _swaps().labels(outcome.value).inc()
