"""`mlops-promote`: move the serving alias to a model version, or back, without a redeploy.

    mlops-promote 7 --reason "retrained on March data"
    mlops-promote --rollback --reason "v7 misclassifies virginica"

It talks to MLflow through the stack's tunnel (`$(pulumi stack output mlflowTunnelCommand)`), as
the `promoter` user: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, MLflow's own variables.
The running API watches the alias (MLOPS_MODEL_WATCH_SECONDS) and swaps to the new version once it
has verified it. Each move tags the version it promotes (config/promotion.py): who, when, why, and
the version it replaced, which is the one `--rollback` goes back to.

Exit codes: 0 moved, 1 refused or failed (one line on stderr saying why), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from config import promotion
from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME

READY = "READY"  # MLflow's ModelVersionStatus for a version whose artifacts are registered


class Refused(Exception):
    """The move is not made; the message says why, in one line."""


@dataclass(frozen=True)
class Version:
    """What the decision needs to know of a registered model version."""

    number: str
    status: str
    replaced: str  # the version it replaced when it was last promoted; "" if none recorded


@dataclass(frozen=True)
class Move:
    action: str  # promotion.PROMOTE or promotion.ROLLBACK
    old: str | None  # the champion now (None: no champion yet)
    new: str


def plan_promotion(current: Version | None, target: Version) -> Move:
    """Promote `target` over `current`, or refuse."""
    if target.status != READY:
        raise Refused(
            f"version {target.number} is {target.status}, not {READY}: its artifacts are not registered"
        )
    if current is not None and current.number == target.number:
        raise Refused(f"version {target.number} is already the champion")
    return Move(promotion.PROMOTE, current.number if current else None, target.number)


def plan_rollback(current: Version | None) -> str:
    """The version a rollback goes back to: the one the champion replaced, or refuse."""
    if current is None:
        raise Refused("there is no champion to roll back")
    if not current.replaced:
        raise Refused(f"champion version {current.number} has no previous champion recorded")
    return current.replaced


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mlops-promote", description="Move the serving alias to a model version, or roll it back."
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("version", nargs="?", help="the model version to serve")
    which.add_argument("--rollback", action="store_true", help="go back to the previous champion")
    parser.add_argument("--reason", required=True, help="why: recorded on the version")
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or promotion.TUNNEL_TRACKING_URI,
        help="MLflow (default: MLFLOW_TRACKING_URI, else the tunnel's %(default)s)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME, help="registered model (%(default)s)")
    parser.add_argument("--alias", default=CHAMPION_ALIAS, help="serving alias (%(default)s)")
    args = parser.parse_args(argv)
    if not args.reason.strip():
        parser.error("--reason must say why")
    if args.version is not None and not args.version.isdigit():
        parser.error(f"version must be a number, not {args.version!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from app.training import registry_moves  # MLflow: imported after the arguments are checked

    try:
        move, tags = registry_moves.move_alias(
            args.tracking_uri, args.model, args.alias, args.version, args.reason.strip()
        )
    except (Refused, registry_moves.RegistryError) as error:
        print(f"mlops-promote: refused: {error}", file=sys.stderr)
        return 1
    old = f"v{move.old}" if move.old else "no champion"
    print(f"{args.model}@{args.alias}: {old} -> v{move.new} ({move.action})")
    for key, value in tags.items():
        print(f"  tag {key} = {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
