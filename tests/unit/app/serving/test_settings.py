"""Invalid settings stop startup with a message naming the environment variable."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from config.app_settings import ApiSettings, TrainSettings, describe_validation_error


def test_defaults_serve_the_champion_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLOPS_HOST", "MLOPS_PORT", "MLOPS_MODEL_SOURCE", "MLOPS_MODEL_ALIAS"):
        monkeypatch.delenv(key, raising=False)
    settings = ApiSettings()
    assert (settings.host, settings.port, settings.model_alias) == ("127.0.0.1", 8000, "champion")


@pytest.mark.parametrize(
    ("variable", "value", "cls"),
    [
        ("MLOPS_PORT", "eighty", ApiSettings),
        ("MLOPS_PORT", "70000", ApiSettings),
        ("MLOPS_WORKERS", "0", ApiSettings),
        ("MLOPS_MODEL_SOURCE", "s3", ApiSettings),
        ("MLOPS_N_ESTIMATORS", "-3", TrainSettings),
        ("MLOPS_TEST_SIZE", "1.5", TrainSettings),
        ("MLOPS_EXPORT_CHECK_ROWS", "100", TrainSettings),
        ("MLOPS_MODEL_WATCH_SECONDS", "0.5", ApiSettings),
        ("MLOPS_MODEL_WATCH_SECONDS", "-1", ApiSettings),
        ("MLOPS_MODEL_WATCH_SECONDS", "3601", ApiSettings),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, cls: type
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        cls()
    assert f"invalid setting {variable}:" in describe_validation_error(caught.value)


def test_path_source_requires_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_MODEL_SOURCE", "path")
    monkeypatch.delenv("MLOPS_MODEL_PATH", raising=False)
    with pytest.raises(ValidationError, match="MLOPS_MODEL_PATH must be set"):
        ApiSettings()


def test_gunicorn_refuses_to_start_on_a_bad_setting() -> None:
    """The real entry point exits non-zero with the variable's name and no traceback."""
    gunicorn = f"{sys.prefix}/bin/gunicorn"
    result = subprocess.run(
        [gunicorn, "--config", "python:app.serving.gunicorn_conf", "app.serving.api:create_app()"],
        env={"MLOPS_WORKERS": "many", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "invalid setting MLOPS_WORKERS" in result.stderr
    assert "Traceback" not in result.stderr


def test_training_refuses_a_bad_flag_value() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.training.train", "--n-estimators", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "invalid setting MLOPS_N_ESTIMATORS" in result.stderr


def test_gunicorn_master_imports_neither_onnxruntime_nor_mlflow() -> None:
    """Workers forked from a master holding onnxruntime state hang at exit (seen on SIGHUP)."""
    code = (
        "import sys, app.serving.gunicorn_conf, app.serving.model_handoff; "
        "heavy = [m for m in ('onnxruntime', 'mlflow', 'sklearn') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_training_and_serving_read_one_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLOPS_MODEL_ALIAS: the alias training promotes to is the one the API serves."""
    monkeypatch.setenv("MLOPS_MODEL_ALIAS", "staging")
    assert TrainSettings().model_alias == ApiSettings().model_alias == "staging"


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("1", 1.0), ("30", 30.0)])
def test_the_alias_watch_is_off_at_zero_else_at_least_a_second(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: float
) -> None:
    monkeypatch.setenv("MLOPS_MODEL_WATCH_SECONDS", value)
    assert ApiSettings().model_watch_seconds == expected
