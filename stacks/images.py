"""Build the stack's own images and pack them into one archive for hosts without registry access.

Image delivery (see README, "What provisioning does"): the default is `archive`:
the controller (the machine running `pulumi up`) builds the images from this repo, `docker save`s
them into one gzip archive (layers shared between images are stored once), and the stack role
copies it to the host and `docker load`s it, but only when the host lacks an image ID. The
alternative `registry` ships nothing: the host pulls the pinned names itself.

Images for a VM are built for its platform (config.stack_layout.HOST_PLATFORM, x86-64) whatever
this machine's CPU, so an arm64 laptop ships images the VM can run; `make stack` builds for this
machine. Docker with BuildKit (Docker 23+, or DOCKER_BUILDKIT=1) is needed on the controller.

Environment (all optional):
  MLOPS_DOCKER             docker CLI to use (default `docker`); BuildKit is needed for the CA secret.
  MLOPS_BASE_IMAGE         Python base image for every build (build arg BASE_IMAGE).
  MLOPS_BUILD_CA_BUNDLE    extra CA bundle for pip behind a TLS-inspecting proxy (BuildKit secret).
  MLOPS_IMAGE_CACHE_DIR    where archives are kept between runs (default var/image-archives).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from config import edge
from config.services import EDGE_IMAGE, EDGE_UID, SERVICES, TRAINER_IMAGE
from config.stack_layout import HOST_PLATFORM

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = REPO_ROOT / "var" / "image-archives"


@dataclass(frozen=True)
class ImageBuild:
    """One image this repo builds: name, Dockerfile and build args (repo root is the context)."""

    name: str
    dockerfile: str
    build_args: dict[str, str] = field(default_factory=dict)


_MLFLOW, _API = SERVICES.mlflow, SERVICES.api
# Build order matters: the trainer starts FROM the MLflow image. The Dockerfiles take every fact
# (user id, port, base image names) as a build arg from config/, and have no defaults for them.
OWN_IMAGES = (
    ImageBuild(
        _MLFLOW.image,
        "deploy/mlflow/Dockerfile",
        {"MLFLOW_UID": str(_MLFLOW.uid), "MLFLOW_PORT": str(_MLFLOW.port)},
    ),
    ImageBuild(
        TRAINER_IMAGE,
        "deploy/trainer/Dockerfile",
        {"MLFLOW_IMAGE": _MLFLOW.image, "MLFLOW_UID": str(_MLFLOW.uid)},
    ),
    ImageBuild(_API.image, "app/Dockerfile", {"API_UID": str(_API.uid), "API_PORT": str(_API.port)}),
    ImageBuild(
        EDGE_IMAGE,
        "deploy/edge/Dockerfile",
        {
            "EDGE_UID": str(EDGE_UID),
            "EDGE_HTTP_PORT": str(edge.HTTP_PORT),
            "EDGE_HTTPS_PORT": str(edge.HTTPS_PORT),
            "EDGE_CERT_DIR": edge.CERT_DIR,
            "EDGE_ACME_WEBROOT": edge.ACME_WEBROOT,
            "EDGE_ACME_STATE": edge.ACME_STATE,
            "EDGE_RUNTIME_DIR": edge.RUNTIME_DIR,
            "EDGE_CONFIG_FILE": edge.CONFIG_FILE,
        },
    ),
)
# Pulled by the host unless this machine has them, in which case they travel in the archive too.
THIRD_PARTY_IMAGES = (SERVICES.prometheus.image, SERVICES.grafana.image)


@dataclass(frozen=True)
class ImageArchive:
    path: Path
    # name -> image ID ("sha256:..."); the host loads the archive unless it has all of them.
    images: dict[str, str]


Log = Callable[[str], None]


def docker_cli() -> str:
    return os.environ.get("MLOPS_DOCKER", "docker")


def image_id(name: str) -> str | None:
    result = subprocess.run(
        [docker_cli(), "image", "inspect", "--format", "{{.Id}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def build_command(image: ImageBuild, platform: str | None) -> list[str]:
    """The `docker build` argv; `platform` None builds for this machine's own CPU."""
    command = [docker_cli(), "build", "--quiet", "-f", image.dockerfile, "-t", image.name]
    if platform:
        command += ["--platform", platform]
    args = dict(image.build_args)
    base_image = os.environ.get("MLOPS_BASE_IMAGE")
    if base_image:
        args["BASE_IMAGE"] = base_image
    for key, value in args.items():
        command += ["--build-arg", f"{key}={value}"]
    ca_bundle = os.environ.get("MLOPS_BUILD_CA_BUNDLE")
    if ca_bundle:
        command += ["--secret", f"id=extra_ca,src={ca_bundle}"]
    return [*command, "."]


def build(image: ImageBuild, log: Log, platform: str | None = None) -> None:
    """`docker build` from the repo root (cached layers make an unchanged rebuild take seconds)."""
    command = build_command(image, platform)
    log(f"image: building {image.name} for {platform or 'this machine'} from {image.dockerfile}")
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-25:])
        raise RuntimeError(f"building {image.name} failed:\n{tail}")


def build_own_images(log: Log, platform: str | None = None) -> None:
    for image in OWN_IMAGES:
        build(image, log, platform)


def save_archive(names: Sequence[str], cache_dir: Path, log: Log) -> ImageArchive:
    """One gzip archive of `names`, reused while their image IDs are unchanged."""
    images: dict[str, str] = {}
    for name in names:
        found = image_id(name)
        if found is None:
            raise RuntimeError(f"image {name} is not in the local Docker engine")
        images[name] = found
    key = hashlib.sha256("\n".join(f"{n}={i}" for n, i in sorted(images.items())).encode()).hexdigest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"stack-images-{key[:16]}.tar.gz"
    if path.exists():
        log(f"image: archive {path.name} is current ({len(images)} images)")
        return ImageArchive(path, images)
    for stale in cache_dir.glob("stack-images-*.tar.gz"):
        stale.unlink()
    log(f"image: saving {', '.join(images)} to {path.name}")
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        save = subprocess.Popen([docker_cli(), "save", *images], stdout=subprocess.PIPE)
        gzip = subprocess.run(["gzip", "-1"], stdin=save.stdout, stdout=out, check=False)
        if save.stdout is not None:
            save.stdout.close()
        if save.wait() != 0 or gzip.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError("docker save | gzip failed")
    partial.rename(path)
    return ImageArchive(path, images)


def prepare_archive(log: Log, *, skip_build: bool = False, exclude: Sequence[str] = ()) -> ImageArchive:
    """Build the repo's images for the VM, then archive them plus any third-party image present here."""
    if not skip_build:
        build_own_images(log, HOST_PLATFORM)
    names = [image.name for image in OWN_IMAGES if image.name not in exclude]
    for name in THIRD_PARTY_IMAGES:
        if name in exclude:
            continue
        if image_id(name) is not None:
            names.append(name)
        else:
            log(f"image: {name} not on this machine; the host will pull it")
    cache_dir = Path(os.environ.get("MLOPS_IMAGE_CACHE_DIR", DEFAULT_CACHE_DIR))
    return save_archive(names, cache_dir, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.images", description=__doc__)
    parser.add_argument(
        "command", choices=["build", "archive"], help="build the images, or also archive them"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build_own_images(print)
        else:
            print(prepare_archive(print).path)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
