"""Calls a policy's validate function the way the policy engine would, and collects violations.

The props go through pulumi-policy's own deserialization and unknown-checking proxy, as the
analyzer wraps them (pulumi_policy/policy.py): a policy that touches a value unknown at preview
raises UnknownValueError, which the engine reports as "can't run policy ... during preview"
(advisory) instead of running it. `violations` raises PolicyCannotRunError then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policy.cis_gcp import RULES

# The engine wraps secret inputs; policies see plain values.
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def unwrap_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        if SECRET_SIGNATURE in value:
            return unwrap_secrets(value["value"])
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


class PolicyCannotRunError(Exception):
    """The policy touched a value unknown at preview: the engine would skip it, not enforce it."""


def violations(policy_name: str, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    reported: list[str] = []
    args = ResourceValidationArgs(
        resource_type=resource_type,
        props=unknown_checking_proxy(deserialize_properties(unwrap_secrets(props))),
        urn=f"urn:pulumi:test::mlops-platform::{resource_type}::subject",
        name="subject",
        opts=PolicyResourceOptions(
            protect=False,
            ignore_changes=[],
            delete_before_replace=None,
            aliases=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=[],
        ),
        provider=None,
    )

    def report_violation(message: str, urn: str | None = None) -> None:
        reported.append(message)

    try:
        RULES[policy_name].validate(args, report_violation)
    except UnknownValueError as error:
        raise PolicyCannotRunError(f"{policy_name}: {error.message}") from error
    return reported
