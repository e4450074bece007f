"""Provision a host with the container stack: `python -m stacks.provision --host H --port P --user U`.

With `--via-iap INSTANCE --project P --zone Z` SSH goes through Identity-Aware Proxy
(`gcloud compute start-iap-tunnel` as ssh's ProxyCommand; gcloud on PATH, logged in) instead of
dialling H, which then only names the host: its known_hosts entry and the edge's server name.

This is what `pulumi up` runs against the VM (stacks/provisioning.py) and what tests/e2e runs
against the local test host: ansible-runner's Python API runs playbooks/site.yml over SSH.

Environment (secrets travel only here, never in argv):
  MLOPS_SSH_PRIVATE_KEY         required: the deploy user's private key (OpenSSH format). It goes to
                                ansible-runner's `ssh_key`, which feeds ssh-agent through a FIFO
                                that is removed when the run ends: the key never lands in a file.
  MLOPS_SSH_HOST_KEY            the host's public key(s), `type base64` per line. Absent: the key is
                                read with ssh-keyscan on first contact and its fingerprint printed.
                                Either way SSH runs with StrictHostKeyChecking=yes.
  MLOPS_MLFLOW_ADMIN_PASSWORD   required: MLflow's admin password (basic auth).
  MLOPS_GRAFANA_ADMIN_PASSWORD  required unless `--without grafana`: Grafana's admin password.
  MLOPS_ALERTMANAGER_CONFIG     Alertmanager's config with its receivers (config/alertmanager.py's
                                `rendered_config`; it holds their secrets). Absent: no receiver,
                                alerts reach no one.
Both passwords reach the host only as mode-0600 files; the tasks that handle them are no_log.
They, and the API's MLflow password derived from the admin's, are answers to the playbook's
prompts (stacks/playbook_run.py), and no variable holding a secret is in the environment
ansible-runner records: no file of the run holds one.
Image building/archiving settings: see stacks/images.py.

Output: one short line per task result (`changed  Install Docker ... [host]`), a summary line
with Ansible's totals `provision: ok=N changed=N failed=N unreachable=N skipped=N seconds=S`,
and on failure the failed task, host and message, with exit code 1 (2 for bad arguments, 124 for the timeout).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from config.services import SERVICES, Exposure
from config.stack_layout import DATA_DISK_MOUNT_POINT
from stacks import host_storage, images
from stacks.iap_tunnel import IapTarget
from stacks.image_digests import (
    ImageDigests,
    ImageDigestsError,
    compose_variables,
    parse_image_digests,
    registry_logins,
)
from stacks.playbook_run import (
    EXIT_USAGE,
    PlaybookRun,
    Progress,
    ProvisionError,
    private_data_dir,
    run_playbook,
    say,
)
from stacks.provision_env import (
    ENV_ALERTMANAGER_CONFIG,
    ENV_GRAFANA_PASSWORD,
    ENV_HOST_KEY,
    ENV_MLFLOW_PASSWORD,
    ENV_PRIVATE_KEY,
    playbook_secrets,
)

# Services a stack may leave out or open to the public: the catalog's optional-public ones (Grafana).
OPTIONAL_SERVICES = tuple(s.name for s in SERVICES.all() if s.exposure is Exposure.OPTIONAL_PUBLIC)
DEFAULT_TIMEOUT_SECONDS = 1800
KEYSCAN_ATTEMPTS = 10
# Through IAP nothing waited for SSH before this entry point (pulumi-command's remote.Command has
# no ProxyCommand), so Ansible's SSH retries do: on ssh's exit code 255 (tunnel refused while the
# VM boots, sshd not up, the deploy user's key not yet installed) it pauses 2**n - 1 s, at most
# 30 s (its ssh connection plugin's `reconnection_retries`): 24 retries span about 10 minutes.
IAP_SSH_RETRIES = 24


def env_value(name: str, environ: Mapping[str, str], *, required: bool) -> str | None:
    value = environ.get(name, "").strip()
    if not value and required:
        raise ProvisionError(f"environment variable {name} is required", EXIT_USAGE)
    return value or None


def known_hosts_lines(host: str, port: int, host_keys: str) -> list[str]:
    """`[host]:port type base64` lines from `type base64` (or full known_hosts) lines."""
    name = host if port == 22 else f"[{host}]:{port}"
    lines = []
    for raw in host_keys.splitlines():
        fields = raw.split()
        if len(fields) >= 3 and not fields[0].startswith(("ssh-", "ecdsa-", "sk-")):
            fields = fields[1:]  # a known_hosts line: drop its host name, pin to ours
        if len(fields) < 2:
            continue
        lines.append(f"{name} {fields[0]} {fields[1]}")
    if not lines:
        raise ProvisionError(f"{ENV_HOST_KEY} holds no `type base64` key line", EXIT_USAGE)
    return lines


def scan_host_keys(host: str, port: int) -> str:
    """Trust on first contact: read the host's keys, to be printed as fingerprints."""
    for _ in range(KEYSCAN_ATTEMPTS):
        result = subprocess.run(
            ["ssh-keyscan", "-T", "5", "-p", str(port), "-t", "ed25519", host],
            capture_output=True,
            text=True,
            check=False,
        )
        keys = "\n".join(line for line in result.stdout.splitlines() if line and not line.startswith("#"))
        if keys:
            return keys
        time.sleep(3)
    raise ProvisionError(f"ssh-keyscan found no host key on {host}:{port}")


def write_known_hosts(path: Path, host: str, port: int, environ: Mapping[str, str]) -> None:
    given = env_value(ENV_HOST_KEY, environ, required=False)
    keys = given if given is not None else scan_host_keys(host, port)
    path.write_text("\n".join(known_hosts_lines(host, port, keys)) + "\n", encoding="utf-8")
    if given is None:
        fingerprints = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True, check=False
        ).stdout.strip()
        say(f"host key recorded on first contact (check it): {fingerprints}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stacks.provision",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", required=True, help="address of the host to provision")
    parser.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    parser.add_argument("--user", required=True, help="deploy user (NOPASSWD sudo)")
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="overall limit in seconds for the playbook run",
    )
    parser.add_argument(
        "--image-delivery",
        choices=["archive", "registry"],
        default="archive",
        help="archive: build here, copy and `docker load` on the host (default); registry: the host pulls",
    )
    parser.add_argument(
        "--image-digests",
        type=image_digests_arg,
        help="registry delivery: the released images by digest, as JSON or a JSON file "
        '({"IMAGE NAME": "REGISTRY/NAME@sha256:..."}, what `make release` writes); the host pulls '
        "exactly these (logged in to Artifact Registry with its service account)",
    )
    add_service_switches(parser)
    add_iap_arguments(parser)
    parser.add_argument("--domain", default="", help="the edge's domain: its certificate comes from ACME")
    parser.add_argument("--acme-server", default="", help="ACME directory URL (default: Let's Encrypt)")
    parser.add_argument("--acme-email", default="", help="e-mail for the ACME account")
    parser.add_argument(
        "--acme-ca-file", type=Path, help="CA bundle to trust for a private ACME server (not Let's Encrypt)"
    )
    parser.add_argument(
        "--data-disk-device",
        type=host_storage.data_disk_device,
        help=f"block device formatted once (ext4, only if blank) and mounted at {DATA_DISK_MOUNT_POINT}: "
        "Docker's data (every volume) lives there. Absent: that folder is used as it is",
    )
    parser.add_argument(
        "--backup-target",
        type=host_storage.backup_target_arg,
        help="gs://BUCKET[/PREFIX] (written with the VM's service account) or an absolute host path: "
        "MLflow's store is backed up there daily. Absent: no backup timer",
    )
    parser.add_argument(
        "--mlflow-bind-address",
        type=ipv4_address,
        help="publish MLflow on this host address too, besides 127.0.0.1: the management VM's internal "
        "address when the API scales out (the replicas reach MLflow there; the firewall admits only them)",
    )
    args = parser.parse_args(argv)
    check_iap_arguments(parser, args)
    if args.image_digests and args.image_delivery != "registry":
        parser.error("--image-digests: only with --image-delivery registry")
    return args


def image_digests_arg(value: str) -> ImageDigests:
    """Inline JSON (what `pulumi up` passes) or the path of a JSON file."""
    try:
        text = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
        return parse_image_digests(text)
    except (OSError, ImageDigestsError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_iap_arguments(parser: argparse.ArgumentParser) -> None:
    """--via-iap INSTANCE --project P --zone Z (for every entry point that uses `ssh_inventory`)."""
    group = parser.add_argument_group("SSH through Identity-Aware Proxy (sshVia: iap)")
    group.add_argument(
        "--via-iap",
        metavar="INSTANCE",
        default="",
        help="reach SSH through IAP TCP forwarding to this GCE instance (gcloud on PATH); "
        "--host then only names the host. Needs --project and --zone",
    )
    group.add_argument("--project", default="", help="GCP project of the --via-iap instance")
    group.add_argument("--zone", default="", help="zone of the --via-iap instance")


def check_iap_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.via_iap and (args.project or args.zone):
        parser.error("--project and --zone: only with --via-iap")
    if args.via_iap and not (args.project and args.zone):
        parser.error("--via-iap: needs --project and --zone")
    try:
        iap_target(args)
    except ValueError as error:
        parser.error(f"--via-iap: {error}")


def iap_target(args: argparse.Namespace) -> IapTarget | None:
    """The IAP tunnel's target, or None for a direct connection (also when the entry point's
    parser has no IAP options)."""
    instance = getattr(args, "via_iap", "")
    return IapTarget(instance, args.project, args.zone) if instance else None


def ipv4_address(value: str) -> str:
    """An IPv4 address, as compose's port syntax and MLflow's allowed hosts take it."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {value!r}") from None


def mlflow_vars(args: argparse.Namespace) -> dict[str, Any]:
    """Where MLflow is published besides loopback (none: the role's default, loopback only)."""
    return {"stack_mlflow_bind_address": args.mlflow_bind_address} if args.mlflow_bind_address else {}


def storage_vars(args: argparse.Namespace) -> dict[str, Any]:
    """The docker role's data disk and data root; the backup role's facts and target."""
    return {
        **host_storage.data_disk_vars(args.data_disk_device),
        **host_storage.backup_role_vars(args.backup_target),
    }


def edge_vars(args: argparse.Namespace) -> dict[str, Any]:
    """The edge's name and, with a domain, where its certificate comes from."""
    extravars: dict[str, Any] = {"stack_edge_server_name": args.domain or args.host}
    if args.domain:
        extravars["stack_edge_domain"] = args.domain
        extravars["stack_edge_acme_email"] = args.acme_email
        if args.acme_server:
            extravars["stack_edge_acme_server"] = args.acme_server
        if args.acme_ca_file:
            extravars["stack_edge_acme_ca_bundle"] = args.acme_ca_file.read_text(encoding="utf-8")
    return extravars


def add_service_switches(parser: argparse.ArgumentParser) -> None:
    """--without / --public for the optional services (shared with `make stack`)."""
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=OPTIONAL_SERVICES,
        help="leave an optional service out (e.g. where its image cannot be had)",
    )
    parser.add_argument(
        "--public",
        action="append",
        default=[],
        choices=OPTIONAL_SERVICES,
        help="bind an optional service on every interface (default: 127.0.0.1 only, reach it over SSH)",
    )


def service_vars(args: argparse.Namespace) -> dict[str, Any]:
    """The stack role's switches for the optional services."""
    return {
        "stack_grafana_enabled": "grafana" not in args.without,
        "stack_grafana_public": "grafana" in args.public,
        "stack_source_dir": str(images.REPO_ROOT),
    }


def stack_secrets(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """The passwords the stack role writes to the host, from the environment."""
    mlflow = env_value(ENV_MLFLOW_PASSWORD, environ, required=True) or ""
    grafana = env_value(ENV_GRAFANA_PASSWORD, environ, required="grafana" not in args.without)
    alertmanager = env_value(ENV_ALERTMANAGER_CONFIG, environ, required=False)
    if alertmanager is not None and "\n" in alertmanager:
        # The playbook's prompt reads one line: rendered_config writes one line of JSON.
        raise ProvisionError(f"{ENV_ALERTMANAGER_CONFIG} must be one line (JSON)", EXIT_USAGE)
    return playbook_secrets(mlflow, grafana or "", alertmanager)


def ssh_inventory(args: argparse.Namespace, known_hosts: Path) -> dict[str, Any]:
    """The one target host; the host key pinned to `--host` (through IAP too: ssh looks a
    ProxyCommand's destination up in known_hosts by the name it was given, never by address)."""
    options = ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    options += ["-o", "IdentitiesOnly=no"]
    host: dict[str, Any] = {
        "ansible_host": args.host,
        "ansible_port": args.port,
        "ansible_user": args.user,
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    target = iap_target(args)
    if target is not None:
        options += target.ssh_options(args.port)
        host["ansible_ssh_retries"] = IAP_SSH_RETRIES
    # Ansible splits this string with shlex.split (Connection._split_ssh_args): the ProxyCommand,
    # which holds spaces, must stay one argument.
    host["ansible_ssh_common_args"] = shlex.join(options)
    return {"all": {"hosts": {"target": host}}}


def require_pinned_key_through_iap(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """ssh-keyscan has no ProxyCommand: through IAP the host key must be given, never scanned."""
    if iap_target(args) is not None and env_value(ENV_HOST_KEY, environ, required=False) is None:
        raise ProvisionError(
            f"{ENV_HOST_KEY} is required with --via-iap (the key cannot be scanned through IAP)", EXIT_USAGE
        )


def delivery_vars(args: argparse.Namespace, archive: images.ImageArchive | None) -> dict[str, Any]:
    extravars: dict[str, Any] = {"stack_image_delivery": args.image_delivery}
    digests = args.image_digests
    if digests:
        # `.env` pins each own image to its digest; Docker logs in only to Artifact Registry.
        extravars["stack_image_references"] = compose_variables(digests)
        extravars["stack_registry_logins"] = registry_logins(digests)
    if archive is not None:
        extravars["stack_image_archive"] = str(archive.path)
        extravars["stack_archive_images"] = [{"name": n, "id": i} for n, i in archive.images.items()]
    return extravars


def prepare_archive(args: argparse.Namespace) -> images.ImageArchive | None:
    if args.image_delivery != "archive":
        return None
    try:
        return images.prepare_archive(say, exclude=[SERVICES.by_name(name).image for name in args.without])
    except RuntimeError as error:
        raise ProvisionError(f"preparing images: {error}") from error


def deploy_key(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The private key, once the connection's settings are known to be complete."""
    require_pinned_key_through_iap(args, environ)
    # OpenSSH refuses a key without its final newline ("error in libcrypto"); env values often lose it.
    return f"{env_value(ENV_PRIVATE_KEY, environ, required=True)}\n"


def host_inventory(args: argparse.Namespace, environ: Mapping[str, str], data_dir: Path) -> dict[str, Any]:
    """The SSH inventory of the run, its host key pinned in the run's private data dir."""
    known_hosts = data_dir / "known_hosts"
    write_known_hosts(known_hosts, args.host, args.port, environ)
    return ssh_inventory(args, known_hosts)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> Progress:
    private_key = deploy_key(args, environ)
    secrets = stack_secrets(args, environ)
    archive = prepare_archive(args)
    with private_data_dir() as data_dir:
        playbook = PlaybookRun(
            playbook="site.yml",
            inventory=host_inventory(args, environ, data_dir),
            extravars={
                **service_vars(args),
                **delivery_vars(args, archive),
                **edge_vars(args),
                **storage_vars(args),
                **mlflow_vars(args),
            },
            secrets=secrets,
            timeout=args.timeout,
            ssh_key=private_key,
        )
        route = f" through IAP to {args.via_iap}" if args.via_iap else ""
        say(f"provision: {args.user}@{args.host}:{args.port}{route} (images: {args.image_delivery})")
        return run_playbook(playbook, data_dir, environ)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args, os.environ)
    except ProvisionError as error:
        say(f"provision: FAILED: {error}")
        return error.code
    say("provision: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
