"""Pulumi.yaml, the Pulumi project file, derived from the typed stack settings in config/.

`make generate` writes it. Every project config key is declared with the model's description and
default, so `pulumi config` and the settings model (config/stack_settings.py), which validates
every key before any resource is declared, cannot disagree. Provider keys (gcp:project,
gcp:region, gcp:zone) belong to the Google provider and are set per stack, not declared here.
"""

from __future__ import annotations

import posixpath
from typing import Any, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from config.api_scaling import UNSET_BOUND
from config.stack_settings import PROJECT_NAME, StackSettings

# The repo's virtualenv (`make venv`), relative to the project root: the program imports `config`
# and `stacks` from it, and provisioning runs its interpreter.
VIRTUALENV = ".venv"
VIRTUALENV_PYTHON = f"{VIRTUALENV}/bin/python"
# The program's folder: Pulumi runs it as __main__, and starts provider plugins in it.
MAIN = "stacks/"
# The project root seen from there (`dir` of commands that must run at the repo root).
ROOT_FROM_MAIN = posixpath.relpath(".", MAIN)

# Pulumi's config schema types for the Python types the settings use.
_SCHEMA_TYPES = {str: "string", SecretStr: "string", int: "integer", bool: "boolean", list: "array"}


def _schema_type(annotation: Any) -> str | None:
    """The schema type of a field; None for maps (Pulumi's project schema has no map type)."""
    origin = get_origin(annotation) or annotation
    if origin is dict:
        return None
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if origin not in _SCHEMA_TYPES and args:  # `str | None`
        return _schema_type(args[0])
    return _SCHEMA_TYPES[origin]


def _unset(schema_type: str) -> Any:
    """The declared default of an optional key without a value: "" for text, 0 for numbers (the
    settings model reads both as unset)."""
    return UNSET_BOUND if schema_type == "integer" else ""


def _declaration(field: FieldInfo) -> dict[str, Any]:
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    schema_type = _schema_type(field.annotation)
    if schema_type is None:
        # A plain value that stack files override (the program validates its keys and values).
        return {"value": default}
    declaration: dict[str, Any] = {"type": schema_type}
    if schema_type == "array":
        declaration["items"] = {"type": "string"}
    declaration["description"] = field.description
    if not field.is_required():
        # A declared key without a default is required: an optional one defaults to "".
        declaration["default"] = _unset(schema_type) if default is None else default
    return declaration


def pulumi_project() -> dict[str, Any]:
    """The project file: name, runtime, entry point and every project config key."""
    keys = {field.alias or name: field for name, field in StackSettings.model_fields.items()}
    config = {key: _declaration(field) for key, field in keys.items() if ":" not in key}
    return {
        "name": PROJECT_NAME,
        "description": "GCP network, hardened VM and provisioning of the MLOps container stack.",
        "runtime": {
            "name": "python",
            "options": {"toolchain": "pip", "virtualenv": VIRTUALENV},
        },
        "main": MAIN,
        "config": config,
    }
