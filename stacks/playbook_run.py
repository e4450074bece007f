"""Run one playbook through ansible-runner's Python API, with one short output line per task result.

Shared by the two ways the stack is provisioned: a VM over SSH (stacks/provision.py, what
`pulumi up` runs) and this machine (stacks/local_stack.py, `make stack`). The run's private data
dir (inventory, known_hosts, Ansible's artifacts) is removed when the run ends, whatever the outcome.

Secrets never reach that folder, so even a killed run leaves none behind. ansible-runner records
its whole process environment in `artifacts/<id>/command` (even with `suppress_env_files`), so:
- the passwords are not environment variables: each playbook asks for them with a private
  `vars_prompt` named like the variable of the entry point's contract, and ansible-runner answers
  those prompts from memory over the pseudo-terminal it runs Ansible in (its `passwords`);
- the caller's environment variables holding a secret are left out of the environment while
  ansible-runner copies it;
- the SSH private key goes to ssh-agent through ansible-runner's FIFO (`ssh_key`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
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
    """What to run and how; secrets only in `secrets` and `ssh_key`, never in the vars.

    `secrets` maps each name the playbook prompts for (its `vars_prompt` prompt) to the answer.
    """

    playbook: str
    inventory: dict[str, Any]
    extravars: dict[str, Any]
    secrets: Mapping[str, str]
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


def prompt_answers(secrets: Mapping[str, str]) -> dict[str, str]:
    """ansible-runner `passwords`: a regex for each prompt (`NAME: `, as Ansible prints it) -> the
    answer. Literal text only: anchors and lookarounds never matched in ansible-runner's pexpect
    loop here (the run then waits at the prompt until its timeout)."""
    return {re.escape(f"{name}: "): value for name, value in secrets.items()}


@contextmanager
def environment_without(secret_values: Iterable[str]) -> Iterator[None]:
    """Leave out of os.environ, for the duration, every variable holding one of the secrets."""
    values = [value.strip() for value in secret_values if value.strip()]
    removed = {name: text for name, text in os.environ.items() if any(value in text for value in values)}
    for name in removed:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(removed)


def _runner_env(data_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
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
    }


def run_playbook(run: PlaybookRun, data_dir: Path, environ: Mapping[str, str]) -> Progress:
    """Run the playbook; raise ProvisionError on a failed task, a timeout or an Ansible error."""
    progress = Progress()
    started = time.monotonic()
    secret_values = [*run.secrets.values(), run.ssh_key or ""]
    # ansible-runner copies os.environ when it starts; the copy is written to its artifacts.
    with environment_without(secret_values):
        result = ansible_runner.run(
            private_data_dir=str(data_dir),
            project_dir=str(PLAYBOOK_DIR),
            playbook=run.playbook,
            inventory=run.inventory,
            extravars=run.extravars,
            envvars=_runner_env(data_dir, environ),
            passwords=prompt_answers(run.secrets),
            ssh_key=run.ssh_key,
            # Nothing of the call (vars, passwords, settings) is written under env/.
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
