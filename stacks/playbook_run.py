"""Run one playbook through ansible-runner's Python API, with one short output line per task result.

Shared by the two ways the stack is provisioned: a VM over SSH (stacks/provision.py, what
`pulumi up` runs) and this machine (stacks/local_stack.py, `make stack`). The run's private data
dir (inventory, known_hosts, Ansible's artifacts with their copy of the environment) is removed
when the run ends, whatever the outcome.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

REPO_ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK_DIR = REPO_ROOT / "playbooks"
EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 1, 2, 124
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
        if status is not None:
            self._record(status, data)
        return True

    def _record(self, status: str, data: Mapping[str, Any]) -> None:
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

    def summary(self, seconds: float) -> str:
        stats = self.stats
        return (
            f"provision: ok={stats['ok']} changed={stats['changed']} failed={stats['failures']} "
            f"unreachable={stats['dark']} skipped={stats['skipped']} seconds={seconds:.1f}"
        )


def _result_message(res: Mapping[str, Any]) -> str:
    """The message of a failed result; no_log results carry Ansible's censored text only."""
    parts = [str(res.get("msg", "")).strip()]
    for key in ("stderr", "stdout"):
        text = str(res.get(key, "") or "").strip()
        if text:
            parts.append("\n".join(text.splitlines()[-20:]))
            break
    return "\n".join(part for part in parts if part) or "no message"


@dataclass(frozen=True)
class PlaybookRun:
    """What to run and how; secrets only in `secret_env` and `ssh_key`, never in the vars."""

    playbook: str
    inventory: dict[str, Any]
    extravars: dict[str, Any]
    secret_env: Mapping[str, str]
    timeout: int
    ssh_key: str | None = None


@contextmanager
def private_data_dir() -> Iterator[Path]:
    """A fresh temporary folder for one run, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="mlops-provision-"))
    try:
        yield path
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    """Remove the run's temp dir; again if an ssh/Ansible straggler (after a timeout or a
    refused host key) recreated its connection-sharing folder in the meantime."""
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        time.sleep(1)
        if not path.exists():
            return


def _runner_env(data_dir: Path, environ: Mapping[str, str], secret_env: Mapping[str, str]) -> dict[str, str]:
    # ansible-runner starts the ansible-playbook it finds on PATH: this interpreter's bin/ first.
    path = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', os.defpath)}"
    return {
        "PATH": path,
        "ANSIBLE_ROLES_PATH": str(PLAYBOOK_DIR / "roles"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        # SSH connection sharing per run: a master left by an earlier run (another host key,
        # another key) is never reused, and its socket goes with the temporary dir.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(data_dir / "cp"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        **secret_env,
    }


def run_playbook(run: PlaybookRun, data_dir: Path, environ: Mapping[str, str]) -> Progress:
    """Run the playbook; raise ProvisionError on a failed task, a timeout or an Ansible error."""
    progress = Progress()
    started = time.monotonic()
    result = ansible_runner.run(
        private_data_dir=str(data_dir),
        project_dir=str(PLAYBOOK_DIR),
        playbook=run.playbook,
        inventory=run.inventory,
        extravars=run.extravars,
        envvars=_runner_env(data_dir, environ, run.secret_env),
        ssh_key=run.ssh_key,
        suppress_env_files=True,
        timeout=run.timeout,
        event_handler=progress,
        quiet=True,
    )
    say(progress.summary(time.monotonic() - started))
    if result.status == "timeout":
        raise ProvisionError(f"provisioning timed out after {run.timeout} s", EXIT_TIMEOUT)
    if progress.failures:
        raise ProvisionError("provisioning failed: " + "\n".join(progress.failures))
    if result.rc != 0:
        # No failed task: a syntax or connection error before any task ran. Ansible's own
        # error text names the file and line (never a variable's value).
        tail = "\n".join(result.stdout.read().splitlines()[-15:])
        raise ProvisionError(f"ansible-playbook ended with rc={result.rc} (status {result.status}):\n{tail}")
    return progress
