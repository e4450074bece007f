"""SSH through Identity-Aware Proxy: the OpenSSH ProxyCommand that carries a connection.

`gcloud compute start-iap-tunnel INSTANCE PORT --listen-on-stdin` relays its stdin and stdout
over IAP's TCP forwarding to the instance's port: an OpenSSH ProxyCommand. The flag is hidden
from gcloud's help but is what `gcloud compute ssh --tunnel-through-iap` itself puts in the
ProxyCommand it hands to ssh (with `--project=` and `--zone=`, which spare gcloud a lookup of the
instance's zone). gcloud authenticates with its own credentials (a user's login, or a CI job's
workload identity); the caller needs `iap.tunnelInstances.accessViaIAP` on the instance
(roles/iap.tunnelResourceAccessor) and `compute.instances.get`.

With a ProxyCommand that names the instance itself (no `%h`), ssh never dials the destination:
its name only selects the known_hosts entry. Callers keep the VM's static external address there,
the name `--host` of the entry points, the edge and `sshKnownHostsLine` already use, so one pinned
line serves both `sshVia` modes and switching between them re-pins nothing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

SSH_PORT = 22
# GCE names (RFC 1035 labels), project ids and zones: nothing a shell or ssh's `%` tokens would read.
_PLAIN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class IapTarget:
    """The instance that IAP forwards to, and where it lives."""

    instance: str
    project: str
    zone: str

    def __post_init__(self) -> None:
        named = (("instance", self.instance), ("project", self.project), ("zone", self.zone))
        for field_name, value in named:
            if not _PLAIN.match(value):
                raise ValueError(f"IAP {field_name} {value!r}: lowercase letters, digits and '-' only")

    def proxy_command(self, port: int = SSH_PORT) -> str:
        """The ProxyCommand value: ssh runs it with the user's shell, so one plain command line."""
        return shlex.join(
            [
                "gcloud",
                "compute",
                "start-iap-tunnel",
                self.instance,
                str(port),
                "--listen-on-stdin",
                f"--project={self.project}",
                f"--zone={self.zone}",
            ]
        )

    def ssh_options(self, port: int = SSH_PORT) -> list[str]:
        """ssh's `-o` options for the tunnel, one argv element each."""
        # ProxyUseFdpass stays off: gcloud relays the bytes itself, it passes no socket back.
        return ["-o", f"ProxyCommand={self.proxy_command(port)}", "-o", "ProxyUseFdpass=no"]
