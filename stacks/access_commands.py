"""Commands printed as stack outputs: how an admin reaches the VM and its internal services."""

from __future__ import annotations


def key_file(stack: str) -> str:
    """Where the README tells users to save the private key (`pulumi stack output --show-secrets`)."""
    return f"~/.ssh/mlops-{stack}"


def ssh_command(stack: str, user: str, host: str) -> str:
    return f"ssh -i {key_file(stack)} {user}@{host}"


def tunnel_command(stack: str, user: str, host: str, port: int) -> str:
    """Forward localhost:port to the service bound on the VM's loopback (it has no firewall rule)."""
    return f"ssh -i {key_file(stack)} -N -L {port}:127.0.0.1:{port} {user}@{host}"


def http_url(host: str, port: int) -> str:
    """A service on this machine's end of an SSH tunnel."""
    return f"http://{host}:{port}/"


def edge_url(host: str, path: str = "/") -> str:
    """A service the edge proxy serves, over HTTPS on the standard port."""
    return f"https://{host}{path}"
