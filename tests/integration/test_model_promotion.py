"""Promotion without a redeploy: `mlops-promote` moves the alias, the API's master sees it and swaps.

Real processes throughout: an MLflow tracking server over HTTP, the API under gunicorn with a 1 s
alias watch, steady load from concurrent clients, and the `mlops-promote` console script. Three
versions are registered from the session's trained champion (no training here): 1 and 2 with
the same files, 3 with a fast form that disagrees with its own reference (so verification
refuses it, though its sha256 tags match).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from app.model import bundle_digests
from app.model.fast_model import BUNDLE_DIR
from config import promotion
from config.app_settings import CHAMPION_ALIAS, DEFAULT_EXPERIMENT_NAME, DEFAULT_MODEL_NAME
from tests.conftest import TrainedStore
from tests.support.load import Hammer, LoadOutcome
from tests.support.processes import VENV_BIN, Server, clean_env, start_api, start_mlflow_server

pytestmark = pytest.mark.integration

CLIENTS = 4
WATCH_SECONDS = 1
# Interval + verification in a child process + graceful worker replacement, on a busy machine.
SWAP_DEADLINE_SECONDS = 90.0
# Client read timeout: generous, as the machine may be busy; a lost request is a reset, not a wait.
SLOW = 60.0


@dataclass(frozen=True)
class Registry:
    server: Server
    client: MlflowClient
    versions: dict[str, str]  # good, same, broken -> version number


def register(client: MlflowClient, run_id: str, model_dir: Path, path: str) -> str:
    """Upload a downloaded model directory as a new version, with the sha256 tags serving checks."""
    client.log_artifacts(run_id, str(model_dir), path)
    version = client.create_model_version(DEFAULT_MODEL_NAME, f"runs:/{run_id}/{path}", run_id=run_id)
    digests = bundle_digests.digests_of(model_dir / BUNDLE_DIR)
    for key, value in bundle_digests.as_tags(digests).items():
        client.set_model_version_tag(DEFAULT_MODEL_NAME, version.version, key, value)
    return str(version.version)


def disagreeing_copy(model_dir: Path, destination: Path) -> Path:
    """The model with a reference answer the fast form does not give: verification refuses it."""
    shutil.copytree(model_dir, destination)
    metadata_path = destination / BUNDLE_DIR / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["reference"]["probabilities"][0] = [1 / 3, 1 / 3, 1 / 3]
    metadata_path.write_text(json.dumps(metadata))
    return destination


@pytest.fixture(scope="module")
def registry(trained_store: TrainedStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("promotion-mlflow")
    server = start_mlflow_server(root)
    try:
        client = MlflowClient(tracking_uri=server.base_url, registry_uri=server.base_url)
        client.create_registered_model(DEFAULT_MODEL_NAME)
        run_id = client.create_run(client.create_experiment(DEFAULT_EXPERIMENT_NAME)).info.run_id
        broken = disagreeing_copy(trained_store.model_dir, root / "broken")
        versions = {
            "good": register(client, run_id, trained_store.model_dir, "good"),
            "same": register(client, run_id, trained_store.model_dir, "same"),
            "broken": register(client, run_id, broken, "broken"),
        }
        client.set_registered_model_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS, versions["good"])
        yield Registry(server, client, versions)
    finally:
        server.stop()


def promote(registry: Registry, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script, as an operator runs it through the tunnel (MLflow's own env vars)."""
    env = clean_env({"MLFLOW_TRACKING_URI": registry.server.base_url})
    return subprocess.run(
        [str(VENV_BIN / "mlops-promote"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def served_version(api: Server) -> str:
    return str(requests.get(f"{api.base_url}/ready", timeout=SLOW).json()["model"]["version"])


def metrics_of(api: Server) -> str:
    return requests.get(f"{api.base_url}/metrics", timeout=SLOW).text


def info_versions(metrics: str) -> set[str]:
    """The versions `mlserve_model_info` reports as served (value 1) by live workers."""
    pattern = r'mlserve_model_info\{[^}]*model_version="([^"]+)"[^}]*\} 1\.0'
    return set(re.findall(pattern, metrics))


def swaps(metrics: str, outcome: str) -> float:
    match = re.search(rf'mlserve_model_swaps_total\{{outcome="{outcome}"\}} (\S+)', metrics)
    return float(match.group(1)) if match else -1.0


def wait_until(condition: Callable[[], bool], api: Server, what: str) -> None:
    deadline = time.monotonic() + SWAP_DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, (
            f"{what} not within {SWAP_DEADLINE_SECONDS} s:\n{api.log()[-4000:]}"
        )
        time.sleep(0.2)


def report(step: str, outcome: LoadOutcome) -> None:
    total = sum(outcome.outcomes.values())
    failed = outcome.lost + outcome.wrong + outcome.outcomes["refused"]
    kinds = dict(outcome.outcomes)
    print(f"[{step}] requests: {total}, answered 200: {outcome.answered}, failed: {failed} ({kinds})")


def assert_no_failure(outcome: LoadOutcome) -> None:
    assert outcome.answered > 0, outcome.outcomes
    assert outcome.lost == 0, outcome.outcomes
    assert outcome.wrong == 0, outcome.outcomes
    assert outcome.outcomes["refused"] == 0, outcome.outcomes


@pytest.fixture(scope="module")
def api(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    logs = tmp_path_factory.mktemp("promotion-api")
    server = start_api(
        {
            "MLOPS_TRACKING_URI": registry.server.base_url,
            "MLOPS_MODEL_CACHE_DIR": str(logs / "cache"),
            "MLOPS_METRICS_DIR": str(logs / "metrics"),
            "MLOPS_MODEL_WATCH_SECONDS": str(WATCH_SECONDS),
        },
        logs / "gunicorn.log",
    )
    yield server
    assert server.stop() == 0


def swap_under_load(registry: Registry, api: Server, step: str, args: list[str], expected: str) -> str:
    """Run mlops-promote while clients hammer the API; wait until every live worker serves `expected`."""
    with Hammer(api.base_url, CLIENTS, timeout=SLOW) as hammer:
        time.sleep(0.5)
        result = promote(registry, *args)
        assert result.returncode == 0, result.stderr
        wait_until(lambda: served_version(api) == expected, api, f"version {expected} on /ready")
        wait_until(
            lambda: info_versions(metrics_of(api)) == {expected}, api, f"only {expected} in model_info"
        )
        outcome = hammer.stop()
    report(step, outcome)
    assert_no_failure(outcome)
    return result.stdout


def tags_of(registry: Registry, version: str) -> dict[str, str]:
    return dict(registry.client.get_model_version(DEFAULT_MODEL_NAME, version).tags)


def test_promote_then_roll_back_under_load_then_refuse_a_broken_version(
    registry: Registry, api: Server
) -> None:
    good, same, broken = (registry.versions[key] for key in ("good", "same", "broken"))
    assert served_version(api) == good

    printed = swap_under_load(registry, api, "promote", [same, "--reason", "same files, new version"], same)
    assert f"v{good} -> v{same} (promote)" in printed
    tags = tags_of(registry, same)
    assert tags[promotion.REASON_TAG] == "same files, new version"
    assert tags[promotion.REPLACED_VERSION_TAG] == good
    assert tags[promotion.ACTION_TAG] == promotion.PROMOTE
    assert tags[promotion.PROMOTED_BY_OS_USER_TAG]
    assert tags[promotion.PROMOTED_AT_TAG].endswith("+00:00")
    assert swaps(metrics_of(api), "loaded") == 1

    printed = swap_under_load(registry, api, "rollback", ["--rollback", "--reason", "back to v1"], good)
    assert f"v{same} -> v{good} (rollback)" in printed
    tags = tags_of(registry, good)
    assert (tags[promotion.REPLACED_VERSION_TAG], tags[promotion.ACTION_TAG]) == (same, promotion.ROLLBACK)
    assert swaps(metrics_of(api), "loaded") == 2

    with Hammer(api.base_url, CLIENTS, timeout=SLOW) as hammer:
        result = promote(registry, broken, "--reason", "a broken export")
        assert result.returncode == 0, result.stderr  # the alias moves; the API is what refuses
        wait_until(lambda: swaps(metrics_of(api), "refused") == 1, api, "the refusal")
        time.sleep(5 * WATCH_SECONDS)  # more polls of the same alias: none verifies it again
        assert served_version(api) == good
        metrics = metrics_of(api)
        outcome = hammer.stop()
    report("refused", outcome)
    assert_no_failure(outcome)
    assert info_versions(metrics) == {good}
    assert swaps(metrics, "refused") == 1
    assert swaps(metrics, "loaded") == 2
    assert api.log().count("new model refused, still serving the previous one") == 1
    alias = registry.client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS)
    assert str(alias.version) == broken
