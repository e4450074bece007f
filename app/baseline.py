"""The training baseline that drift monitoring compares live traffic against.

Stored with every model version (fast/metadata.json) so the API exports the baseline of the
model it actually serves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

# Deciles: the API observes each feature value's position in the training distribution, and
# Prometheus histogram buckets at 0.1 .. 1.0 then hold about 10 % each when nothing drifted.
QUANTILE_LEVELS = tuple(round(q, 2) for q in np.linspace(0.0, 1.0, 11))


def build_baseline(
    x_train: NDArray[np.float64],
    y_train: NDArray[np.str_],
    feature_names: tuple[str, ...],
    class_names: tuple[str, ...],
) -> dict[str, Any]:
    counts = {name: int(np.sum(y_train == name)) for name in class_names}
    total = sum(counts.values())
    return {
        "rows": total,
        "class_share": {name: counts[name] / total for name in class_names},
        "quantile_levels": list(QUANTILE_LEVELS),
        "feature_quantiles": {
            name: [float(v) for v in np.quantile(x_train[:, i], QUANTILE_LEVELS)]
            for i, name in enumerate(feature_names)
        },
    }


def training_cdf(values: NDArray[np.float64], quantiles: list[float]) -> NDArray[np.float64]:
    """Position of each value in the training distribution, by interpolating its quantiles.

    Values below the training minimum map to 0, above the maximum to 1. Repeated quantile
    values (common in Iris, measured to 0.1 cm) are handled by np.interp's step behaviour.
    """
    return np.asarray(np.interp(values, quantiles, QUANTILE_LEVELS, left=0.0, right=1.0), dtype=np.float64)
