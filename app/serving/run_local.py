"""`make run`: train when the registry has no champion yet, then serve the API under gunicorn.

Everything stays on this machine: an SQLite MLflow store under ./var/mlflow and the API on
127.0.0.1:8000 (MLOPS_HOST / MLOPS_PORT to change). gunicorn replaces this process, so Ctrl-C
and SIGTERM reach it directly and shut it down gracefully.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from pydantic import ValidationError

from config.app_settings import ApiSettings, ModelSource, describe_validation_error

TRAIN_MODULE = "app.training.train"
GUNICORN_CONFIG = "app.serving.gunicorn_conf"
APP_FACTORY = "app.serving.api:create_app()"


def champion_exists(settings: ApiSettings) -> bool:
    from app.model import model_source

    try:
        model_source.champion_version(settings)  # the alias only: no download
    except model_source.ModelUnavailable:
        return False
    return True


def train() -> int:
    """The training command in its own process: serving code never imports the training side."""
    return subprocess.run([sys.executable, "-m", TRAIN_MODULE], check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.serving.run_local", description=__doc__)
    parser.add_argument("--no-train", action="store_true", help="serve only; never train")
    args = parser.parse_args(argv)
    try:
        settings = ApiSettings()
    except ValidationError as error:
        print(describe_validation_error(error), file=sys.stderr)
        return 2

    if settings.model_source is ModelSource.REGISTRY and not args.no_train:
        wanted = f"{settings.model_name}@{settings.model_alias}"
        if champion_exists(settings):
            print(f"[run] {wanted} exists; skipping training", flush=True)
        else:
            print(f"[run] no {wanted} yet: training first", flush=True)
            code = train()
            if code != 0:
                return code
    print(f"[run] serving on http://{settings.host}:{settings.port} (Ctrl-C stops)", flush=True)
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    os.execv(gunicorn, [gunicorn, "--config", f"python:{GUNICORN_CONFIG}", APP_FACTORY])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
