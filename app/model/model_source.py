"""Find the model to serve - a registry alias or a local directory - and load its fast form."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.model.fast_model import FastModel, load_bundle
from app.model.model_ref import ModelRef
from config.app_settings import ApiSettings, ModelSource

__all__ = ["LoadedModel", "ModelRef", "ModelUnavailable", "champion_version", "load", "load_ref", "resolve"]


class ModelUnavailable(Exception):
    """No model to serve yet (no champion alias, registry unreachable, empty path)."""


@dataclass(frozen=True)
class LoadedModel:
    ref: ModelRef
    fast: FastModel


def _download_version(cache_dir: Path, tracking_uri: str, name: str, version: str) -> Path:
    """Download models:/name/version once into the cache (atomic rename: workers may race)."""
    import mlflow.artifacts  # imported lazily: only the registry source needs it

    target = cache_dir / name / version
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


def champion_version(settings: ApiSettings) -> str:
    """The version behind name@alias in the registry (no download); ModelUnavailable if none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    try:
        version = client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    except MlflowException as error:
        raise ModelUnavailable(
            f"no model {settings.model_name}@{settings.model_alias} at {settings.tracking_uri}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    except Exception as error:  # connection refused, DNS, TLS: the registry is not reachable
        raise ModelUnavailable(f"registry {settings.tracking_uri} unreachable: {error}") from None
    return str(version.version)


def resolve_registry(settings: ApiSettings) -> ModelRef:
    version = champion_version(settings)
    directory = _download_version(
        settings.model_cache_dir, settings.tracking_uri, settings.model_name, version
    )
    return ModelRef(settings.model_name, version, "registry", directory)


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
    """The model settings name: the registry alias's version (downloaded) or a local directory."""
    if settings.model_source is ModelSource.PATH:
        return resolve_path(settings)
    return resolve_registry(settings)


def load_ref(ref: ModelRef) -> LoadedModel:
    """Load and verify the fast form of a resolved model (raises FastModelError)."""
    return LoadedModel(ref, load_bundle(ref.directory))


def load(settings: ApiSettings) -> LoadedModel:
    """Resolve and load a verified fast model (raises ModelUnavailable or FastModelError)."""
    return load_ref(resolve(settings))
