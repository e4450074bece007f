"""Typed settings of the bootstrap stack, validated before any resource is declared.

Same contract as config/stack_settings.py: the engine's flat `namespace:key -> string` map in,
every problem out at once as `namespace:key: message` lines (StackConfigError).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from config.stack_settings import GCP_NAMESPACE, StackConfigError, StackSettings

PROJECT_NAME = "mlops-platform-bootstrap"
# The provider keys this program reads; gcp:zone means nothing to it (no zonal resource).
GCP_KEYS = ("project", "region")

# GitHub's rules: owner 1-39 of alphanumerics and single hyphens; repository names of . _ - and
# alphanumerics. The attribute condition compares this text with the token's `repository` claim.
_GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# GitHub environment names end up inside the token's `sub` claim (`...:environment:NAME`).
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
# Bucket names: 3-63 of a-z 0-9 - _ . starting and ending with a letter or digit (no dots here:
# a dotted name would need domain verification).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
# CIS GCP 1.10: KMS keys rotate within 90 days.
MAX_KEY_ROTATION_DAYS = 90


class BootstrapSettings(BaseModel):
    """Aliases are the config keys as written in bootstrap/Pulumi.<stack>.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)

    project: str = Field(alias="gcp:project", description="GCP project that CI/CD deploys to.")
    region: str = Field(
        default="europe-west1",
        alias="gcp:region",
        description="Region of the registry, the state bucket and the KMS key ring.",
    )
    github_repository: str = Field(
        alias="githubRepository",
        description="The GitHub repository (owner/name) whose workflows may authenticate; no other can.",
    )
    production_environment: str = Field(
        default="production",
        alias="productionEnvironment",
        description="GitHub environment whose jobs may act as the deploy service account.",
    )
    release_environment: str = Field(
        default="release",
        alias="releaseEnvironment",
        description="GitHub environment whose jobs may push images to the registry.",
    )
    state_bucket: str | None = Field(
        default=None,
        alias="stateBucket",
        description="Name of the Pulumi state bucket (globally unique; default <project>-pulumi-state).",
    )
    key_rotation_days: int = Field(
        default=MAX_KEY_ROTATION_DAYS,
        alias="keyRotationDays",
        ge=1,
        le=MAX_KEY_ROTATION_DAYS,
        description="Days between automatic rotations of the secrets key (CIS GCP 1.10: at most 90).",
    )

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        # The main program's own check: a GCP project id is defined once (config/stack_settings.py).
        return StackSettings._check_project(value)

    @field_validator("github_repository")
    @classmethod
    def _check_repository(cls, value: str) -> str:
        if not _GITHUB_REPOSITORY.match(value) or "--" in value.split("/", maxsplit=1)[0]:
            raise ValueError(f"{value!r} is not a GitHub repository such as octo-org/mlops-platform")
        return value

    @field_validator("production_environment", "release_environment")
    @classmethod
    def _check_environment(cls, value: str) -> str:
        if not _ENVIRONMENT.match(value):
            raise ValueError(f"{value!r} is not a GitHub environment name (letters, digits, . _ -)")
        return value

    @field_validator("state_bucket", mode="before")
    @classmethod
    def _check_bucket(cls, value: Any) -> Any:
        # Pulumi.yaml declares the optional key with default "" (a key without default is required).
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not _BUCKET.match(value) or value.startswith("goog"):
            raise ValueError(f"{value!r} is not a bucket name (3-63 of a-z 0-9 _ -, no 'goog' prefix)")
        return value

    @property
    def state_bucket_name(self) -> str:
        return self.state_bucket or f"{self.project}-pulumi-state"


def _full_key(alias: str) -> str:
    return alias if ":" in alias else f"{PROJECT_NAME}:{alias}"


def config_keys() -> dict[str, str]:
    """Every config key the bootstrap program reads (full name) -> its description."""
    return {
        _full_key(field.alias or name): field.description or ""
        for name, field in BootstrapSettings.model_fields.items()
    }


def parse_bootstrap_config(raw: Mapping[str, Any]) -> BootstrapSettings:
    """Validate the engine's config map; raise StackConfigError naming every bad key."""
    known = [key.partition(":")[2] for key in config_keys() if key.startswith(f"{PROJECT_NAME}:")]
    problems: list[str] = []
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace == PROJECT_NAME and key in known:
            values[key] = value
        elif namespace == PROJECT_NAME:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            problems.append(f"{full_key}: unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""))
        elif namespace == GCP_NAMESPACE and key in GCP_KEYS:
            values[full_key] = value
    try:
        settings = BootstrapSettings.model_validate(values)
    except ValidationError as error:
        raise StackConfigError(problems + _describe(error)) from None
    if problems:
        raise StackConfigError(problems)
    return settings


def _describe(error: ValidationError) -> list[str]:
    lines: list[str] = []
    for detail in error.errors():
        key = _full_key(str(detail["loc"][0]))
        if detail["type"] == "missing":
            lines.append(f"{key}: required but not set ({config_keys()[key]}); `pulumi config set {key} ...`")
        else:
            lines.append(f"{key}: {detail['msg'].removeprefix('Value error, ')}")
    return lines
