"""The sha256 of each fast-form file, recorded on the registered model version as tags.

metadata.json holds the sha256s of the graph and the table, but it travels with them: whoever
can edit the files can edit it too. Training therefore also records the sha256 of every fast-form
file, metadata.json included, as tags on the model version in the registry
(`fast_sha256/model.onnx`, ...), and serving checks its downloaded copy against those tags before
trusting it (app/model/model_cache.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from app.model.decision_table import TABLE_FILE
from app.model.fast_model import GRAPH_FILE, METADATA_FILE, sha256_of

TAG_PREFIX = "fast_sha256/"
# Files every recorded bundle has; the decision table is optional.
REQUIRED_FILES = (GRAPH_FILE, METADATA_FILE)
BUNDLE_FILES = (GRAPH_FILE, TABLE_FILE, METADATA_FILE)


def digests_of(bundle: Path) -> dict[str, str]:
    """The sha256 of each fast-form file present in `bundle` (a `fast/` directory), by file name."""
    return {name: sha256_of(bundle / name) for name in BUNDLE_FILES if (bundle / name).is_file()}


def as_tags(digests: Mapping[str, str]) -> dict[str, str]:
    return {f"{TAG_PREFIX}{name}": digest for name, digest in digests.items()}


def from_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The recorded digests among a model version's tags; empty for a version registered without them."""
    return {key.removeprefix(TAG_PREFIX): value for key, value in tags.items() if key.startswith(TAG_PREFIX)}


def mismatches(bundle: Path, expected: Mapping[str, str]) -> list[str]:
    """How the files in `bundle` differ from the recorded digests (empty when they all match)."""
    problems = [
        f"the registry records no sha256 of {name}" for name in REQUIRED_FILES if name not in expected
    ]
    for name, digest in sorted(expected.items()):
        path = bundle / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_of(path) != digest:
            problems.append(f"{name} differs from the registry (sha256)")
    return problems
