"""Find the model to serve - a registry alias or a local directory - and load its fast form."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.fast_model import FastModel, load_bundle

__all__ = ["ModelRef", "ModelUnavailable", "load", "load_bundle", "pin", "resolve"]
from config.app_settings import ApiSettings, ModelSource

# Set by the gunicorn master after it verified a model; workers forked later load exactly that
# directory, so a SIGHUP never lets a worker serve a version the master did not check.
PINNED_DIR_ENV = "MLOPS_PINNED_MODEL_DIR"
PINNED_VERSION_ENV = "MLOPS_PINNED_MODEL_VERSION"
PINNED_NAME_ENV = "MLOPS_PINNED_MODEL_NAME"
PINNED_ENVS = (PINNED_DIR_ENV, PINNED_NAME_ENV, PINNED_VERSION_ENV)


class ModelUnavailable(Exception):
    """No model to serve yet (no champion alias, registry unreachable, empty path)."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    source: str
    directory: Path


@dataclass(frozen=True)
class LoadedModel:
    ref: ModelRef
    fast: FastModel


def _cache_root() -> Path:
    return Path(os.environ.get("MLOPS_MODEL_CACHE_DIR", Path(tempfile.gettempdir()) / "mlops-model-cache"))


def _download_version(tracking_uri: str, name: str, version: str) -> Path:
    """Download models:/name/version once into the cache (atomic rename: workers may race)."""
    import mlflow.artifacts  # imported lazily: only the registry source needs it

    target = _cache_root() / name / version
    if (target / "fast").is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        # models:/ URIs resolve through the registry URI, which does not follow `tracking_uri=`.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(staging))
        try:
            staging.rename(target)
        except OSError:  # another worker won the race; its copy is identical
            shutil.rmtree(staging, ignore_errors=True)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def resolve_registry(settings: ApiSettings) -> ModelRef:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    try:
        version = client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    except MlflowException as error:
        raise ModelUnavailable(
            f"no model {settings.model_name}@{settings.model_alias} at {settings.tracking_uri}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    except Exception as error:  # connection refused, DNS, TLS: the registry is not reachable
        raise ModelUnavailable(f"registry {settings.tracking_uri} unreachable: {error}") from None
    directory = _download_version(settings.tracking_uri, settings.model_name, str(version.version))
    return ModelRef(settings.model_name, str(version.version), "registry", directory)


def resolve_path(settings: ApiSettings) -> ModelRef:
    directory = settings.model_path
    assert directory is not None  # guaranteed by ApiSettings' validator
    if not directory.is_dir():
        raise ModelUnavailable(f"model path {directory} does not exist")
    # A downloaded registry model records its name and version; a hand-made one may not.
    meta_file = directory / "registered_model_meta"
    name, version = settings.model_name, "local"
    if meta_file.is_file():
        meta = yaml.safe_load(meta_file.read_text()) or {}
        name = str(meta.get("model_name", name))
        version = str(meta.get("model_version", version))
    return ModelRef(name, version, "path", directory)


def resolve(settings: ApiSettings) -> ModelRef:
    pinned = os.environ.get(PINNED_DIR_ENV)
    if pinned:
        source = "registry" if settings.model_source is ModelSource.REGISTRY else "path"
        name = os.environ.get(PINNED_NAME_ENV, settings.model_name)
        version = os.environ.get(PINNED_VERSION_ENV, "local")
        return ModelRef(name, version, source, Path(pinned))
    if settings.model_source is ModelSource.PATH:
        return resolve_path(settings)
    return resolve_registry(settings)


def pin(ref: ModelRef) -> None:
    """Make processes forked from now on load exactly this verified model."""
    os.environ[PINNED_DIR_ENV] = str(ref.directory)
    os.environ[PINNED_NAME_ENV] = ref.name
    os.environ[PINNED_VERSION_ENV] = ref.version


def unpinned() -> None:
    for key in PINNED_ENVS:
        os.environ.pop(key, None)


def load(settings: ApiSettings) -> LoadedModel:
    """Resolve and load a verified fast model (raises ModelUnavailable or FastModelError)."""
    ref = resolve(settings)
    return LoadedModel(ref, load_bundle(ref.directory))
