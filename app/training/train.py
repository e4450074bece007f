"""`python -m app.training.train`: train, evaluate, export, register, and promote behind a quality gate.

Settings come from MLOPS_* environment variables (config/app_settings.py); flags override them.
Exit codes: 0 trained (promoted or not), 1 failed (bad settings, export disagreement, store error).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from pydantic import ValidationError
from sklearn.ensemble import RandomForestClassifier

from app.model.fast_model import BUNDLE_DIR, FastModelMismatch
from app.training import registry
from app.training.baseline import build_baseline
from app.training.data import FEATURE_NAMES, Dataset, load_split
from app.training.evaluate import Evaluation, evaluate
from app.training.export import export_fast_model
from config.app_settings import TrainSettings, describe_validation_error

# MLflow's skops loading refuses types it does not trust, and a forest's trees are
# sklearn.tree._tree.Tree: trusted here, so the registered forest loads again.
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


def progress(message: str) -> None:
    print(f"[train] {message}", flush=True)


def parse_args(argv: list[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m app.training.train", description=__doc__)
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (MLOPS_TRACKING_URI)")
    parser.add_argument("--model-name", help="registered model name (MLOPS_MODEL_NAME)")
    parser.add_argument("--model-alias", help="registry alias to promote to (MLOPS_MODEL_ALIAS)")
    parser.add_argument("--experiment-name", help="MLflow experiment (MLOPS_EXPERIMENT_NAME)")
    parser.add_argument("--n-estimators", type=int, help="trees in the forest (MLOPS_N_ESTIMATORS)")
    parser.add_argument("--max-depth", type=int, help="tree depth limit (MLOPS_MAX_DEPTH)")
    parser.add_argument("--min-samples-leaf", type=int, help="samples per leaf (MLOPS_MIN_SAMPLES_LEAF)")
    parser.add_argument("--test-size", type=float, help="held-out share (MLOPS_TEST_SIZE)")
    parser.add_argument("--random-seed", type=int, help="seed (MLOPS_RANDOM_SEED)")
    parser.add_argument("--min-accuracy", type=float, help="quality gate threshold (MLOPS_MIN_ACCURACY)")
    args = vars(parser.parse_args(argv))
    return {key: value for key, value in args.items() if value is not None}


def _input_frame(rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FEATURE_NAMES))


@dataclass(frozen=True)
class TrainingResult:
    """What one training run produced; printed as the command's last line (JSON)."""

    run_id: str
    model_name: str
    version: str
    alias: str
    promoted: bool
    gate: str
    accuracy: float
    f1_macro: float


def fit(settings: TrainSettings, data: Dataset) -> RandomForestClassifier:
    mlflow.log_params(
        {
            "n_estimators": settings.n_estimators,
            "max_depth": settings.max_depth,
            "min_samples_leaf": settings.min_samples_leaf,
            "test_size": settings.test_size,
            "random_seed": settings.random_seed,
        }
    )
    model = RandomForestClassifier(
        n_estimators=settings.n_estimators,
        max_depth=settings.max_depth,
        min_samples_leaf=settings.min_samples_leaf,
        random_state=settings.random_seed,
        n_jobs=1,
    )
    model.fit(_input_frame(data.x_train).to_numpy(), data.y_train)
    progress(f"trained RandomForest ({settings.n_estimators} trees)")
    return model


def evaluate_on_test_set(model: RandomForestClassifier, data: Dataset) -> Evaluation:
    evaluation = evaluate(data.y_test, model.predict(data.x_test), data.class_names)
    mlflow.log_metrics(evaluation.metrics())
    mlflow.log_dict(evaluation.confusion_report(), "evaluation/confusion_matrix.json")
    progress(f"test accuracy {evaluation.accuracy:.4f}, macro F1 {evaluation.f1_macro:.4f}")
    return evaluation


def export(settings: TrainSettings, model: RandomForestClassifier, data: Dataset, out_dir: Path) -> None:
    """The fast form into out_dir/fast/, checked against the forest (FastModelMismatch if not)."""
    baseline = build_baseline(data.x_train, data.y_train, FEATURE_NAMES, data.class_names)
    mlflow.log_dict(baseline, "evaluation/baseline.json")
    progress(f"exporting to ONNX, checking agreement on {settings.export_check_rows} random rows")
    agreement = export_fast_model(
        model,
        data.x_train,
        data.x_test,
        FEATURE_NAMES,
        baseline,
        out_dir,
        settings.export_check_rows,
        settings.probability_tolerance,
        settings.random_seed,
    )
    mlflow.log_dict(agreement.report(), "evaluation/fast_model_agreement.json")
    mlflow.log_metric("fast_model_max_probability_difference", agreement.max_probability_difference)
    forms = "ONNX and decision table agree" if agreement.decision_table else "ONNX agrees"
    progress(
        f"{forms} on {agreement.rows_checked} rows "
        f"(max probability difference {agreement.max_probability_difference:.2e})"
    )
    if agreement.decision_table:
        progress(
            f"decision table: {agreement.decision_table_note}, equal to the graph on "
            f"{agreement.decision_table_boundary_rows} split-boundary rows"
        )
    else:
        progress(f"no decision table ({agreement.decision_table_note}): onnxruntime serves every row")


def register(settings: TrainSettings, model: RandomForestClassifier, data: Dataset, fast_dir: Path) -> str:
    """Log the forest as a new version of the registered model, its fast form inside; the version."""
    input_example = _input_frame(data.x_test[:2])
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(input_example, model.predict(data.x_test[:2])),
        input_example=input_example,
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        registered_model_name=settings.model_name,
    )
    # The fast form travels inside the model version's artifacts (models:/name/version/fast/).
    MlflowClient().log_model_artifacts(info.model_id, str(fast_dir))
    version = str(info.registered_model_version)
    registry.record_fast_digests(settings.model_name, version, fast_dir / BUNDLE_DIR)
    progress(f"registered {settings.model_name} version {version}")
    return version


def gate(settings: TrainSettings, version: str, accuracy: float) -> registry.GateDecision:
    """Move the serving alias to `version` if it passes the quality gate; tag the version either way."""
    alias = settings.model_alias
    current = registry.current_champion(settings.model_name, alias)
    decision = registry.quality_gate(accuracy, settings.min_accuracy, current)
    client = MlflowClient()
    client.set_model_version_tag(settings.model_name, version, "quality_gate", decision.reason)
    client.set_model_version_tag(settings.model_name, version, "fast_format", "onnx")
    if decision.passed:
        replaced = current.version if current else None
        registry.promote(settings.model_name, alias, version, replaced, f"training: {decision.reason}")
        progress(f"quality gate passed ({decision.reason}): version {version} is now @{alias}")
    else:
        progress(f"quality gate not passed ({decision.reason}): @{alias} unchanged")
    return decision


def run_training(settings: TrainSettings) -> TrainingResult:
    """Train one model version: fit -> evaluate -> export -> register -> gate."""
    started = time.monotonic()
    registry.prepare_tracking(settings.tracking_uri)
    experiment_id = registry.ensure_experiment(
        settings.experiment_name, settings.tracking_uri, settings.artifact_root
    )
    progress(f"tracking URI {settings.tracking_uri}, experiment {settings.experiment_name!r}")
    data = load_split(settings.test_size, settings.random_seed)
    progress(f"loaded Iris: {len(data.x_train)} training rows, {len(data.x_test)} test rows")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        model = fit(settings, data)
        evaluation = evaluate_on_test_set(model, data)
        with tempfile.TemporaryDirectory(prefix="fast-model-") as tmp:
            export(settings, model, data, Path(tmp))
            version = register(settings, model, data, Path(tmp))
        decision = gate(settings, version, evaluation.accuracy)
    progress(f"done in {time.monotonic() - started:.1f} s")
    return TrainingResult(
        run_id=run.info.run_id,
        model_name=settings.model_name,
        version=version,
        alias=settings.model_alias,
        promoted=decision.passed,
        gate=decision.reason,
        accuracy=evaluation.accuracy,
        f1_macro=evaluation.f1_macro,
    )


def main(argv: list[str] | None = None) -> int:
    overrides = parse_args(argv)
    try:
        settings = TrainSettings(**overrides)
    except ValidationError as error:
        print(describe_validation_error(error), file=sys.stderr)
        return 1
    try:
        result = run_training(settings)
    except FastModelMismatch as error:
        print(f"[train] export check failed, nothing registered: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
