"""Find the model to serve - a registry alias or a local directory - and load its fast form.

A registry version is checked file by file against the sha256s recorded on it in the registry
(app/model/bundle_digests.py) at every load, and downloaded again when its cached copy differs
(app/model/model_cache.py). A local directory (MLOPS_MODEL_SOURCE=path) has no registry to ask:
its own metadata.json vouches for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from app.model import bundle_digests, model_cache
from app.model.fast_model import BUNDLE_DIR, FastModel, FastModelError, load_bundle
from app.model.model_ref import ModelRef
from config.app_settings import ApiSettings, ModelSource

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = [
    "LoadedModel",
    "ModelRef",
    "ModelUnavailable",
    "champion_version",
    "load",
    "load_ref",
    "load_version",
]

log = logging.getLogger(__name__)


class ModelUnavailable(Exception):
    """No model to serve yet (no champion alias, registry unreachable, empty path)."""


@dataclass(frozen=True)
class LoadedModel:
    ref: ModelRef
    fast: FastModel
    # The fast form's sha256s as the registry recorded them (empty: a path model or an older version).
    digests: Mapping[str, str] = field(default_factory=dict)


def _registry_client(settings: ApiSettings) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


@contextmanager
def _registry_errors(what: str, settings: ApiSettings) -> Iterator[None]:
    """Turn a registry failure into ModelUnavailable naming what was asked for."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as error:
        raise ModelUnavailable(
            f"no {what} at {settings.tracking_uri}: {str(error).splitlines()[0]}"
        ) from None
    except Exception as error:  # connection refused, DNS, TLS: the registry is not reachable
        raise ModelUnavailable(f"registry {settings.tracking_uri} unreachable: {error}") from None


def champion_version(settings: ApiSettings) -> str:
    """The version behind name@alias in the registry (no download); ModelUnavailable if none."""
    with _registry_errors(f"model {settings.model_name}@{settings.model_alias}", settings):
        version = _registry_client(settings).get_model_version_by_alias(
            settings.model_name, settings.model_alias
        )
    return str(version.version)


# A worker that already has sha256s to fall back on asks the registry once, briefly: MLflow's
# default retries take about 4 minutes against a registry that is down, and gunicorn kills a
# worker that takes longer than MLOPS_TIMEOUT_SECONDS to boot.
QUICK_REGISTRY_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@contextmanager
def _quick_registry_calls() -> Iterator[None]:
    """MLflow reads these at each request; set them for this process while the block runs."""
    saved = {key: os.environ.get(key) for key in QUICK_REGISTRY_ENV}
    os.environ.update(QUICK_REGISTRY_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def registry_digests(settings: ApiSettings, name: str, version: str) -> dict[str, str]:
    """The fast form's sha256s recorded on the version at training; empty for older versions."""
    with _registry_errors(f"model {name} version {version}", settings):
        tags = _registry_client(settings).get_model_version(name, version).tags
    return bundle_digests.from_tags(tags)


def _downloader(settings: ApiSettings, name: str, version: str) -> Callable[[Path], None]:
    def download(destination: Path) -> None:
        import mlflow.artifacts  # imported lazily: only the registry source needs it

        # models:/ URIs resolve through the registry URI, which does not follow `tracking_uri=`.
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        with _registry_errors(f"model {name} version {version}", settings):
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=str(destination)
            )

    return download


def _bundle_problems(directory: Path) -> list[str]:
    """A version registered without digests: only its own metadata.json can vouch for it."""
    try:
        load_bundle(directory)
    except FastModelError as error:
        return [str(error)]
    return []


def load_version(
    settings: ApiSettings, name: str, version: str, known_digests: Mapping[str, str] | None = None
) -> LoadedModel:
    """models:/name/version from the cache, its files checked against the registry's sha256s.

    `known_digests` (what the gunicorn master read from the registry) stand in for the registry
    when it cannot be reached, so a worker restarted during an outage still serves its cached
    copy if that copy matches them (there is nothing to download it again from).
    """
    download = _downloader(settings, name, version)
    if known_digests is None:
        digests = registry_digests(settings, name, version)
    else:
        try:
            with _quick_registry_calls():
                digests = registry_digests(settings, name, version)
        except ModelUnavailable as error:
            log.warning("%s; checking the cached copy against the sha256s the master verified", error)
            digests, download = dict(known_digests), _no_download(error)
    directory = model_cache.cached_version(
        settings.model_cache_dir, name, version, _check_for(name, version, digests), download
    )
    return LoadedModel(ModelRef(name, version, "registry", directory), load_bundle(directory), digests)


def _no_download(error: ModelUnavailable) -> Callable[[Path], None]:
    def download(destination: Path) -> None:
        raise error

    return download


def _check_for(name: str, version: str, digests: Mapping[str, str]) -> model_cache.Check:
    """Compare with the registry's sha256s; a version registered before they were recorded has
    only its own metadata.json to vouch for it (served, with a warning)."""
    if digests:
        return partial(_digest_problems, expected=digests)
    log.warning(
        "%s version %s was registered without sha256 tags: its cached copy is checked only "
        "against its own metadata.json; train again to record them",
        name,
        version,
    )
    return _bundle_problems


def _digest_problems(directory: Path, expected: Mapping[str, str]) -> list[str]:
    return bundle_digests.mismatches(directory / BUNDLE_DIR, expected)


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


def load_ref(ref: ModelRef) -> LoadedModel:
    """Load and verify the fast form in a local directory (raises FastModelError)."""
    return LoadedModel(ref, load_bundle(ref.directory))


def load(settings: ApiSettings) -> LoadedModel:
    """The verified model settings name: the registry alias's version, or a local directory.

    Raises ModelUnavailable (nothing to serve yet) or FastModelError (refuse what was found).
    """
    if settings.model_source is ModelSource.PATH:
        return load_ref(resolve_path(settings))
    name = settings.model_name
    return load_version(settings, name, champion_version(settings))
