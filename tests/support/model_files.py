"""Model files as an attacker or an accident leaves them: a version placed in a cache, edited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlflow import MlflowClient

from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME


def champion_version(tracking_uri: str) -> str:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return str(client.get_model_version_by_alias(DEFAULT_MODEL_NAME, CHAMPION_ALIAS).version)


def place_in_cache(model_dir: Path, cache: Path, version: str) -> Path:
    """A downloaded version copied where the API keeps it: <cache>/<name>/<version>/ (0700 folders)."""
    parent = cache / DEFAULT_MODEL_NAME
    parent.mkdir(mode=0o700, parents=True)
    cache.chmod(0o700)
    return Path(shutil.copytree(model_dir, parent / version))


def swap_classes(metadata_path: Path, first: str, second: str) -> None:
    """Swap two class names in metadata.json and in its reference answers, so it stays consistent
    with itself: the bundle's own checks (sha256s, reference set) still pass."""
    metadata = json.loads(metadata_path.read_text())
    swapped = {first: second, second: first}
    metadata["class_names"] = [swapped.get(name, name) for name in metadata["class_names"]]
    reference = metadata["reference"]
    reference["classes"] = [swapped.get(name, name) for name in reference["classes"]]
    metadata_path.write_text(json.dumps(metadata, indent=1))
