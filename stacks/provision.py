"""Provision a host with the container stack: `python -m stacks.provision --host H --port P --user U`.

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
Both passwords reach the host only as mode-0600 files; the tasks that handle them are no_log.
Image building/archiving settings: see stacks/images.py.

Output: one short line per task result (`changed  Install Docker ... [host]`), a summary line
with Ansible's totals `provision: ok=N changed=N failed=N unreachable=N skipped=N seconds=S`,
and on failure the failed task, host and message, with exit code 1 (2 for bad arguments, 124 for the timeout).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME
from config.services import SERVICES, Exposure
from stacks import images

REPO_ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK_DIR = REPO_ROOT / "playbooks"
ENV_PRIVATE_KEY = "MLOPS_SSH_PRIVATE_KEY"
ENV_HOST_KEY = "MLOPS_SSH_HOST_KEY"
ENV_MLFLOW_PASSWORD = "MLOPS_MLFLOW_ADMIN_PASSWORD"  # noqa: S105 - a variable's name
ENV_GRAFANA_PASSWORD = "MLOPS_GRAFANA_ADMIN_PASSWORD"  # noqa: S105 - a variable's name
# Services a stack may leave out or open to the public: the catalog's optional-public ones (Grafana).
OPTIONAL_SERVICES = tuple(s.name for s in SERVICES.all() if s.exposure is Exposure.OPTIONAL_PUBLIC)
DEFAULT_TIMEOUT_SECONDS = 1800
EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 1, 2, 124
KEYSCAN_ATTEMPTS = 10
# Only these Ansible events become output lines; everything else stays in the (deleted) artifacts.
RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


class ProvisionError(Exception):
    """A failure to report on one line and exit non-zero."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Progress:
    """Turns ansible-runner events into short lines and remembers what failed."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # (task name, status) per result, for callers and tests that check idempotence.
    results: list[tuple[str, str]] = field(default_factory=list)
    # Ansible's own totals from the final stats event (ok, changed, failures, dark, skipped).
    stats: Counter[str] = field(default_factory=Counter)

    def __call__(self, event: Mapping[str, Any]) -> bool:
        data: Mapping[str, Any] = event.get("event_data", {})
        if event.get("event") == "playbook_on_stats":
            # Per-host totals from Ansible itself: they count no_log tasks too.
            for key in ("ok", "changed", "failures", "dark", "skipped"):
                per_host = data.get(key) or {}
                self.stats[key] = sum(int(n) for n in per_host.values())
            return True
        status = RESULT_EVENTS.get(str(event.get("event", "")))
        if status is None:
            return True
        res: Mapping[str, Any] = data.get("res", {}) if isinstance(data.get("res"), Mapping) else {}
        if status == "ok" and res.get("changed"):
            status = "changed"
        elif status == "ok" and "censored" in res:
            status = "ok/nolog"  # no_log results do not say whether they changed: see the totals
        if status == "failed" and data.get("ignore_errors"):
            status = "ignored"
        task = str(data.get("task", "?")).strip()
        host = str(data.get("host", "?"))
        self.counts[status] += 1
        self.results.append((task, status))
        say(f"{status:<9} {task} [{host}]")
        if status in ("failed", "unreachable"):
            self.failures.append(f"task {task!r} on host {host}: {_result_message(res)}")
        return True


def _result_message(res: Mapping[str, Any]) -> str:
    """The message of a failed result; no_log results carry Ansible's censored text only."""
    parts = [str(res.get("msg", "")).strip()]
    for key in ("stderr", "stdout"):
        text = str(res.get(key, "") or "").strip()
        if text:
            parts.append("\n".join(text.splitlines()[-20:]))
            break
    return "\n".join(part for part in parts if part) or "no message"


def _env(name: str, environ: Mapping[str, str], *, required: bool) -> str | None:
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
    given = _env(ENV_HOST_KEY, environ, required=False)
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
    return parser.parse_args(argv)


def runner_settings(
    args: argparse.Namespace, known_hosts: Path, archive: images.ImageArchive | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inventory, extravars): addresses and switches only, never a secret."""
    ssh_args = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=no"
    inventory = {
        "all": {
            "hosts": {
                "target": {
                    "ansible_host": args.host,
                    "ansible_port": args.port,
                    "ansible_user": args.user,
                    "ansible_ssh_common_args": ssh_args,
                    "ansible_python_interpreter": "/usr/bin/python3",
                }
            }
        }
    }
    extravars: dict[str, Any] = {
        "stack_image_delivery": args.image_delivery,
        "stack_grafana_enabled": "grafana" not in args.without,
        "stack_grafana_public": "grafana" in args.public,
        "stack_source_dir": str(REPO_ROOT),
        # From config/, so the role asks the registry for what the API will serve.
        "stack_mlflow_url": f"http://127.0.0.1:{SERVICES.mlflow.port}",
        "stack_model_name": DEFAULT_MODEL_NAME,
        "stack_model_alias": CHAMPION_ALIAS,
    }
    if archive is not None:
        extravars["stack_image_archive"] = str(archive.path)
        extravars["stack_archive_images"] = [{"name": n, "id": i} for n, i in archive.images.items()]
    return inventory, extravars


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> Progress:
    # OpenSSH refuses a key without its final newline ("error in libcrypto"); env values often lose it.
    private_key = f"{_env(ENV_PRIVATE_KEY, environ, required=True)}\n"
    secrets = {ENV_MLFLOW_PASSWORD: _env(ENV_MLFLOW_PASSWORD, environ, required=True)}
    if "grafana" not in args.without:
        secrets[ENV_GRAFANA_PASSWORD] = _env(ENV_GRAFANA_PASSWORD, environ, required=True)

    archive = None
    if args.image_delivery == "archive":
        try:
            archive = images.prepare_archive(say, exclude=_excluded(args))
        except RuntimeError as error:
            raise ProvisionError(f"preparing images: {error}") from error

    progress = Progress()
    private_data_dir = Path(tempfile.mkdtemp(prefix="mlops-provision-"))
    try:
        known_hosts = private_data_dir / "known_hosts"
        write_known_hosts(known_hosts, args.host, args.port, environ)
        inventory, extravars = runner_settings(args, known_hosts, archive)
        # ansible-runner starts the ansible-playbook it finds on PATH: this interpreter's bin/ first.
        path = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', os.defpath)}"
        envvars = {
            "PATH": path,
            "ANSIBLE_ROLES_PATH": str(PLAYBOOK_DIR / "roles"),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            # SSH connection sharing per run: a master left by an earlier run (another host key,
            # another key) is never reused, and its socket goes with the temporary dir.
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(private_data_dir / "cp"),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            **{k: v for k, v in secrets.items() if v is not None},
        }
        say(f"provision: {args.user}@{args.host}:{args.port} (images: {args.image_delivery})")
        started = time.monotonic()
        result = ansible_runner.run(
            private_data_dir=str(private_data_dir),
            project_dir=str(PLAYBOOK_DIR),
            playbook="site.yml",
            inventory=inventory,
            extravars=extravars,
            envvars=envvars,
            ssh_key=private_key,
            suppress_env_files=True,
            timeout=args.timeout,
            event_handler=progress,
            quiet=True,
        )
        seconds = time.monotonic() - started
        stats = progress.stats
        say(
            f"provision: ok={stats['ok']} changed={stats['changed']} failed={stats['failures']} "
            f"unreachable={stats['dark']} skipped={stats['skipped']} seconds={seconds:.1f}"
        )
        if result.status == "timeout":
            raise ProvisionError(f"provisioning timed out after {args.timeout} s", EXIT_TIMEOUT)
        if progress.failures:
            raise ProvisionError("provisioning failed: " + "\n".join(progress.failures))
        if result.rc != 0:
            # No failed task: a syntax or connection error before any task ran. Ansible's own
            # error text names the file and line (never a variable's value).
            tail = "\n".join(result.stdout.read().splitlines()[-15:])
            raise ProvisionError(
                f"ansible-playbook ended with rc={result.rc} (status {result.status}):\n{tail}"
            )
        return progress
    finally:
        _remove_private_data_dir(private_data_dir)


def _remove_private_data_dir(path: Path) -> None:
    """Remove the run's temp dir; again if an ssh/Ansible straggler (after a timeout or a
    refused host key) recreated its connection-sharing folder in the meantime."""
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        time.sleep(1)
        if not path.exists():
            return


def _excluded(args: argparse.Namespace) -> list[str]:
    return [SERVICES.by_name(name).image for name in args.without]


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
