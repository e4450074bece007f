"""List or restore the backups of a host's MLflow store: `python -m stacks.backup list|restore`.

    python -m stacks.backup list    --host H --port P --user U
    python -m stacks.backup restore --host H --port P --user U [--backup ID]

The same SSH contract as `python -m stacks.provision` (MLOPS_SSH_PRIVATE_KEY, MLOPS_SSH_HOST_KEY in
the environment; StrictHostKeyChecking=yes); playbooks/restore.yml runs through ansible-runner.
The target is the one the host was provisioned with (`--backup-target`), unless given here.
`list` prints the backup ids, oldest first. `restore` restores the given id (default: the newest):
MLflow is stopped, its database and artifacts replaced, started again, and the API reloads and
serves the restored champion. A bucket is read with this machine's Google credentials (rclone
on PATH: Application Default Credentials, e.g. `gcloud auth application-default login`), since
the VM may only create objects there; a host path is read on the host.
Exit codes: 0 done, 1 failed (unknown id, no backups, no target, a failed step), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stacks.host_storage import BackupTargetError, backup_role_vars, parse_target
from stacks.playbook_run import EXIT_USAGE, PlaybookRun, ProvisionError, private_data_dir, run_playbook, say
from stacks.provision import add_iap_arguments, check_iap_arguments, deploy_key, host_inventory

DEFAULT_TIMEOUT_SECONDS = 900
BACKUP_ID = re.compile(r"\d{8}T\d{6}Z")
LIST_FILE = "backups.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stacks.backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["list", "restore"])
    parser.add_argument("--host", required=True, help="address of the host")
    parser.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    parser.add_argument("--user", required=True, help="deploy user (NOPASSWD sudo)")
    parser.add_argument("--backup", default="", help="the id to restore (default: the newest)")
    parser.add_argument(
        "--backup-target", default="", help="gs://BUCKET[/PREFIX] or a host path (default: the host's)"
    )
    parser.add_argument(
        "--timeout", type=int, default=DEFAULT_TIMEOUT_SECONDS, help="overall limit in seconds"
    )
    add_iap_arguments(parser)
    args = parser.parse_args(argv)
    check_iap_arguments(parser, args)
    if args.backup and args.action != "restore":
        parser.error("--backup: only with `restore`")
    if args.backup and not BACKUP_ID.fullmatch(args.backup):
        parser.error(f"--backup: {args.backup!r} is not a backup id (like 20260102T030405Z: see `list`)")
    return args


def restore_vars(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """The backup role's facts, the action, and where the playbook hands back the list."""
    try:
        target = parse_target(args.backup_target) if args.backup_target else None
    except BackupTargetError as error:
        raise ProvisionError(f"--backup-target: {error}", EXIT_USAGE) from error
    return {
        **backup_role_vars(target),
        "backup_action": args.action,
        "backup_requested_id": args.backup,
        "backup_list_file": str(data_dir / LIST_FILE),
        "backup_controller_dir": str(data_dir),
    }


def read_listing(path: Path) -> tuple[str, list[str]]:
    if not path.is_file():
        raise ProvisionError("the playbook handed back no list of backups")
    listing = json.loads(path.read_text(encoding="utf-8"))
    return str(listing["target"]), [str(backup_id) for backup_id in listing["ids"]]


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> list[str]:
    private_key = deploy_key(args, environ)
    with private_data_dir() as data_dir:
        playbook = PlaybookRun(
            playbook="restore.yml",
            inventory=host_inventory(args, environ, data_dir),
            extravars=restore_vars(args, data_dir),
            secrets={},
            timeout=args.timeout,
            ssh_key=private_key,
        )
        say(f"backup {args.action}: {args.user}@{args.host}:{args.port}")
        run_playbook(playbook, data_dir, environ)
        target, ids = read_listing(data_dir / LIST_FILE)
    say(f"backups at {target}: {len(ids)}")
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ids = run(args, os.environ)
    except ProvisionError as error:
        say(f"backup {args.action}: FAILED: {error}")
        return error.code
    if args.action == "list":
        for backup_id in ids:
            print(backup_id, flush=True)
    else:
        # The playbook restored the named id, or else the newest (it failed if there was none).
        say(f"restored backup {args.backup or ids[-1]}")
    say(f"backup {args.action}: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
