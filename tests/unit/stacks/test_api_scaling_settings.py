"""apiReplicas and its bounds: one VM by default; above 1, bounds that hold, with clear errors."""

from __future__ import annotations

import pytest

from config.stack_settings import StackConfigError, StackSettings, parse_stack_config

VALID = {"gcp:project": "my-project-1", "mlops-platform:sshSourceRanges": '["203.0.113.7/32"]'}


def settings(**keys: str) -> StackSettings:
    return parse_stack_config({**VALID, **{f"mlops-platform:{key}": value for key, value in keys.items()}})


def problems_of(**keys: str) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        settings(**keys)
    return caught.value.problems


def test_one_vm_by_default() -> None:
    default = settings()
    assert default.api_replicas == 1
    assert default.scales_out is False


def test_three_replicas_get_bounds_from_the_count() -> None:
    three = settings(apiReplicas="3")
    assert three.scales_out is True
    assert (three.min_api_replicas, three.max_api_replicas) == (3, 6)
    assert three.api_target_cpu_percent == 60
    bounded = settings(apiReplicas="3", apiMinReplicas="2", apiMaxReplicas="10", apiTargetCpuPercent="70")
    assert (bounded.min_api_replicas, bounded.max_api_replicas, bounded.api_target_cpu_percent) == (2, 10, 70)
    assert settings(apiReplicas="40").max_api_replicas == 50


def test_bounds_that_do_not_hold_are_refused_with_the_numbers() -> None:
    assert problems_of(apiReplicas="3", apiMinReplicas="4") == [
        "API replica bounds must hold 1 <= apiMinReplicas (4) <= apiReplicas (3) <= apiMaxReplicas (6) <= 50"
    ]
    assert problems_of(apiReplicas="3", apiMaxReplicas="2")[0].startswith("API replica bounds must hold")


def test_bounds_without_scale_out_are_refused() -> None:
    assert problems_of(apiMaxReplicas="4") == [
        "apiMaxReplicas only apply with apiReplicas above 1; remove them"
    ]


def test_counts_and_utilisation_are_range_checked_by_key() -> None:
    (problem,) = problems_of(apiReplicas="0")
    assert problem.startswith("mlops-platform:apiReplicas: Input should be greater than or equal to 1")
    (problem,) = problems_of(apiReplicas="2", apiTargetCpuPercent="99")
    assert problem.startswith("mlops-platform:apiTargetCpuPercent: Input should be less than or equal to 95")
