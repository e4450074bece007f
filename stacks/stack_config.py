"""Read this stack's settings from the Pulumi engine and stop cleanly when they are wrong."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.config import _SECRET_KEYS, CONFIG, get_config_env, get_config_secret_keys_env

from config.stack_settings import StackConfigError, StackSettings, parse_stack_config


def raw_stack_config() -> dict[str, Any]:
    """Every `namespace:key -> value` the engine gave this program run.

    `pulumi.Config` can only look keys up one by one; spotting an unknown (mistyped) key needs the
    whole map, which the SDK keeps in its runtime config (set from the engine or PULUMI_CONFIG).
    """
    return {**get_config_env(), **CONFIG.get()}


def secret_config_keys() -> set[str]:
    """The keys the engine holds encrypted (`pulumi config set --secret`): from the engine's run
    request, or PULUMI_CONFIG_SECRET_KEYS when the program runs outside it. The SDK only answers
    `is_config_secret` one key at a time, so the set is read where the SDK keeps it."""
    return {*get_config_secret_keys_env(), *_SECRET_KEYS.get()}


def load_stack_settings() -> StackSettings:
    """Validated settings, or a clean stop: one error line per bad key and no stack trace."""
    project_name = pulumi.get_project()
    try:
        return parse_stack_config(raw_stack_config(), project_name, secret_config_keys())
    except StackConfigError as error:
        pulumi.log.error(str(error))
        # RunError ends the program with the message alone, without Pulumi's traceback dump.
        raise pulumi.RunError(str(error)) from None
