"""The quality gate that decides whether a new version becomes @champion."""

from __future__ import annotations

from app.training.registry import Champion, quality_gate


def test_passes_without_champion_when_above_threshold() -> None:
    decision = quality_gate(0.95, 0.9, None)
    assert decision.passed
    assert "no current champion" in decision.reason


def test_fails_below_threshold() -> None:
    decision = quality_gate(0.85, 0.9, None)
    assert not decision.passed
    assert "below the threshold" in decision.reason


def test_fails_when_worse_than_champion() -> None:
    decision = quality_gate(0.93, 0.9, Champion(version="4", accuracy=0.97))
    assert not decision.passed
    assert "champion v4" in decision.reason


def test_equal_to_champion_passes() -> None:
    assert quality_gate(0.97, 0.9, Champion(version="4", accuracy=0.97)).passed


def test_champion_without_metric_does_not_block() -> None:
    assert quality_gate(0.91, 0.9, Champion(version="2", accuracy=None)).passed
