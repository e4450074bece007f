"""The VM's SSH host key, read from GCE guest attributes: nothing trusts the key on first contact.

With `enable-guest-attributes` metadata on, the Google guest agent generates the instance's SSH
host keys at first boot and publishes each public key as guest attribute `hostkeys/<type>` whose
value is the key's base64 part (the agent splits the `.pub` line on spaces and writes field 2
under `hostkeys/` + field 1). The value reaches Pulumi over the Compute API (authenticated, not
over the network path to the VM), so the first SSH connection can already check the key.

The agent writes the keys some seconds after boot, and the provider's data source returns no
values (not an error) until then: the read is retried for a bounded time. At preview the
instance's name is unknown, and so is the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_gcp as gcp

GUEST_ATTRIBUTES_METADATA = "enable-guest-attributes"
HOST_KEYS_NAMESPACE = "hostkeys"
HOST_KEYS_QUERY_PATH = f"{HOST_KEYS_NAMESPACE}/"
HOST_KEY_TYPE = "ssh-ed25519"
# The agent publishes within a minute of boot; the instance is RUNNING when this starts.
POLL_ATTEMPTS = 36
POLL_DELAY_SECONDS = 5.0


class HostKeyMissingError(RuntimeError):
    """The instance published no host key in time."""


def authorized_key_line(query_values: Sequence[Mapping[str, Any]] | None) -> str | None:
    """`ssh-ed25519 <base64>` from the `hostkeys/` entries, the form pulumi-command's `host_key`
    parses (golang.org/x/crypto/ssh ParseAuthorizedKey) and known_hosts lines use."""
    for entry in query_values or []:
        namespace = str(entry.get("namespace") or "").strip("/")
        if namespace == HOST_KEYS_NAMESPACE and entry.get("key") == HOST_KEY_TYPE and entry.get("value"):
            return f"{HOST_KEY_TYPE} {str(entry['value']).strip()}"
    return None


def _entries(result: gcp.compute.GetInstanceGuestAttributesResult) -> list[Mapping[str, Any]]:
    return [{"namespace": v.namespace, "key": v.key, "value": v.value} for v in result.query_values or []]


async def poll_host_key(project: str, zone: str, instance: str) -> str:
    """Ask GCE for the instance's published ED25519 host key until it is there, or give up."""
    for attempt in range(POLL_ATTEMPTS):
        try:
            result = await gcp.compute.get_instance_guest_attributes_output(
                name=instance, zone=zone, project=project, query_path=HOST_KEYS_QUERY_PATH
            ).future()
        except Exception as error:  # transient API errors: the next attempt asks again
            pulumi.log.debug(f"guest attributes of {instance} not readable yet: {error}")
            result = None
        line = authorized_key_line(_entries(result)) if result is not None else None
        if line:
            return line
        if attempt + 1 < POLL_ATTEMPTS:
            await asyncio.sleep(POLL_DELAY_SECONDS)
    waited = int(POLL_ATTEMPTS * POLL_DELAY_SECONDS)
    raise HostKeyMissingError(
        f"instance {instance} in {zone} published no {HOST_KEY_TYPE} host key under guest attributes "
        f"{HOST_KEYS_QUERY_PATH} within {waited} s ({POLL_ATTEMPTS} reads): is the Google guest "
        f"agent running on its image, and metadata {GUEST_ATTRIBUTES_METADATA}=TRUE set?"
    )


def instance_host_key(
    project: str, zone: str, instance_id: pulumi.Output[str], instance_name: pulumi.Output[str]
) -> pulumi.Output[str]:
    """The key as an Output, read once the instance exists.

    The name alone is fixed in the program and known at preview; the id is known only for an
    instance that exists. A preview of a new (or replaced) VM so leaves the key unknown instead of
    polling for an instance that is not there yet.
    """
    return pulumi.Output.all(instance_id, instance_name).apply(
        lambda values: poll_host_key(project, zone, values[1])
    )
