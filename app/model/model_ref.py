"""Which model version a process serves, and where its files are: plain data, no heavy imports.

The gunicorn master passes one to its workers (app.serving.model_handoff), so this module must
stay importable without onnxruntime or MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    source: str  # "registry" or "path"
    directory: Path
