"""Where a value sits in the training distribution: the quantile levels and the CDF they give.

Training records each feature's quantiles at these levels (app.training.baseline); serving maps
live feature values through them for the drift histograms (app.serving.prediction_metrics).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# Deciles: the API observes each feature value's position in the training distribution, and
# Prometheus histogram buckets at 0.1 .. 1.0 then hold about 10 % each when nothing drifted.
QUANTILE_LEVELS = tuple(round(q, 2) for q in np.linspace(0.0, 1.0, 11))


def training_cdf(values: NDArray[np.float64], quantiles: list[float]) -> NDArray[np.float64]:
    """Position of each value in the training distribution, by interpolating its quantiles.

    Values below the training minimum map to 0, above the maximum to 1. Repeated quantile
    values (common in Iris, measured to 0.1 cm) are handled by np.interp's step behaviour.
    """
    return np.asarray(np.interp(values, quantiles, QUANTILE_LEVELS, left=0.0, right=1.0), dtype=np.float64)
