"""Commands printed as stack outputs: how an admin reaches the VM and its internal services.

With `sshVia: iap` each command carries the IAP ProxyCommand: it runs wherever gcloud is logged
in as someone holding roles/iap.tunnelResourceAccessor, from any address. The destination stays
the VM's address, the name its known_hosts line (`sshKnownHostsLine`) pins the key to.
"""

from __future__ import annotations

import shlex

from stacks.iap_tunnel import IapTarget


def key_file(stack: str) -> str:
    """Where the README tells users to save the private key (`pulumi stack output --show-secrets`)."""
    return f"~/.ssh/mlops-{stack}"


def _ssh(stack: str, via: IapTarget | None) -> str:
    # The key file stays unquoted: the shell must expand its `~`.
    proxy = f" {shlex.join(['-o', f'ProxyCommand={via.proxy_command()}'])}" if via else ""
    return f"ssh -i {key_file(stack)}{proxy}"


def ssh_command(stack: str, user: str, host: str, via: IapTarget | None = None) -> str:
    return f"{_ssh(stack, via)} {user}@{host}"


def tunnel_command(stack: str, user: str, host: str, port: int, via: IapTarget | None = None) -> str:
    """Forward localhost:port to the service bound on the VM's loopback (it has no firewall rule)."""
    return f"{_ssh(stack, via)} -N -L {port}:127.0.0.1:{port} {user}@{host}"


def http_url(host: str, port: int) -> str:
    """A service on this machine's end of an SSH tunnel."""
    return f"http://{host}:{port}/"


def edge_url(host: str, path: str = "/") -> str:
    """A service the edge proxy serves, over HTTPS on the standard port."""
    return f"https://{host}{path}"
