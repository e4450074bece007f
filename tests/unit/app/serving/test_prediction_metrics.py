"""The single-row drift path computes exactly what the batch path computes."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.training_quantiles import QUANTILE_LEVELS, training_cdf
from app.serving.prediction_metrics import training_position
from app.training.baseline import build_baseline

QUANTILES = [4.3, 4.8, 5.0, 5.0, 5.6, 5.8, 6.1, 6.3, 6.5, 6.9, 7.9]  # with a repeated value, as in Iris


@pytest.mark.parametrize("value", [4.0, 4.3, 4.5, 4.8, 4.99, 5.0, 5.3, 6.9, 7.5, 7.9, 9.0])
def test_scalar_and_vector_positions_agree(value: float) -> None:
    assert training_position(value, QUANTILES) == pytest.approx(
        float(training_cdf(np.array([value]), QUANTILES)[0])
    )


def test_random_values_agree_and_stay_in_unit_interval() -> None:
    values = np.random.default_rng(3).uniform(3.0, 9.0, size=500)
    vector = training_cdf(values, QUANTILES)
    scalar = [training_position(float(v), QUANTILES) for v in values]
    assert np.allclose(vector, scalar)
    assert min(scalar) >= 0.0
    assert max(scalar) <= 1.0


def test_training_data_falls_evenly_into_deciles() -> None:
    """Without drift each decile bucket holds about 10 % of the rows: the premise of the drift rules."""
    rng = np.random.default_rng(5)
    x = rng.normal(5.8, 0.8, size=(4000, 1))
    baseline = build_baseline(x, np.array(["a"] * 4000), ("f",), ("a",))
    positions = training_cdf(x[:, 0], baseline["feature_quantiles"]["f"])
    counts, _ = np.histogram(positions, bins=np.array(QUANTILE_LEVELS, dtype=float))
    assert np.allclose(counts / len(x), 0.1, atol=0.01)
    assert baseline["class_share"] == {"a": 1.0}
