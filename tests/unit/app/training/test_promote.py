"""`mlops-promote`: argument errors, refusals (one line, exit 1) and the tags of a move.

Refusals run against a real MLflow registry in a local SQLite store; the swap a promotion causes in
the running API is tested in tests/integration/test_model_promotion.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from app.training.promote import Refused, Version, main, plan_promotion, plan_rollback
from config import promotion
from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reason", "x"], "one of the arguments version --rollback is required"),
        (["2", "--rollback", "--reason", "x"], "not allowed with argument"),
        (["2"], "the following arguments are required: --reason"),
        (["2", "--reason", "  "], "--reason must say why"),
        (["two", "--reason", "x"], "version must be a number, not 'two'"),
    ],
)
def test_bad_arguments_exit_2_saying_why(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_the_tunnel_is_the_default_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.training.promote import parse_args

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert parse_args(["2", "--reason", "x"]).tracking_uri == "http://localhost:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:15000")
    assert parse_args(["2", "--reason", "x"]).tracking_uri == "http://127.0.0.1:15000"


def test_a_version_that_is_not_ready_is_refused() -> None:
    with pytest.raises(Refused, match="version 4 is PENDING_REGISTRATION, not READY"):
        plan_promotion(Version("3", "READY", ""), Version("4", "PENDING_REGISTRATION", ""))


def test_a_rollback_follows_the_replaced_tag() -> None:
    assert plan_rollback(Version("4", "READY", "3")) == "3"
    with pytest.raises(Refused, match="no champion to roll back"):
        plan_rollback(None)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registry with versions 1 and 2 of the model (no artifacts needed to move an alias)."""
    root = tmp_path_factory.mktemp("promote-store")
    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(DEFAULT_MODEL_NAME)
    for _ in range(2):
        client.create_model_version(DEFAULT_MODEL_NAME, Path(root).as_uri())
    return uri


def promote(store: str, *args: str) -> int:
    return main([*args, "--tracking-uri", store])


def refusal(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_refusals_exit_1_with_one_line(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(store, "--rollback", "--reason", "r") == 1
    assert refusal(capsys) == "mlops-promote: refused: there is no champion to roll back"
    assert promote(store, "9", "--reason", "r") == 1
    assert refusal(capsys) == f"mlops-promote: refused: {DEFAULT_MODEL_NAME} has no version 9"
    assert promote(store, "1", "--reason", "r", "--model", "nope") == 1
    assert refusal(capsys) == "mlops-promote: refused: there is no registered model 'nope'"


def test_promote_tag_and_roll_back(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "promoter")
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    assert promote(store, "1", "--reason", "first") == 0
    assert promote(store, "1", "--reason", "again") == 1
    assert "version 1 is already the champion" in capsys.readouterr().err
    assert promote(store, "--rollback", "--reason", "r") == 1
    assert refusal(capsys) == "mlops-promote: refused: champion version 1 has no previous champion recorded"

    assert promote(store, "2", "--reason", "better") == 0
    out = capsys.readouterr().out
    assert f"{DEFAULT_MODEL_NAME}@{CHAMPION_ALIAS}: v1 -> v2 (promote)" in out
    assert f"tag {promotion.REASON_TAG} = better" in out
    tags = client.get_model_version(DEFAULT_MODEL_NAME, "2").tags
    assert tags[promotion.PROMOTED_BY_TAG] == "promoter"
    assert tags[promotion.REPLACED_VERSION_TAG] == "1"

    assert promote(store, "--rollback", "--reason", "worse after all") == 0
    assert "v2 -> v1 (rollback)" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS).version) == "1"
    tags = client.get_model_version(DEFAULT_MODEL_NAME, "1").tags
    assert (tags[promotion.ACTION_TAG], tags[promotion.REPLACED_VERSION_TAG]) == (promotion.ROLLBACK, "2")
    assert tags[promotion.REASON_TAG] == "worse after all"
