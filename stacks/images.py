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

Releasing (`python -m stacks.images release`, `make release`, CI's release workflow): every image
is built for the VM's platform with `docker buildx` (a docker-container builder: `docker buildx
create --use`), pushed to a registry under the given tag (the git SHA) with SBOM and SLSA
provenance attestations, and its digest recorded: a JSON map from the image name config/ pins to
`REGISTRY/NAME@sha256:...`, which the deploy consumes (docs/CI_CD.md, MLOPS_IMAGE_DIGESTS).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from config import edge
from config.services import EDGE_IMAGE, EDGE_UID, SERVICES, TRAINER_IMAGE
from config.stack_layout import HOST_PLATFORM

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = REPO_ROOT / "var" / "image-archives"
# Archives (and partial files) untouched this long are no run's any more.
STALE_ARCHIVE_AGE = 6 * 3600.0


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
THIRD_PARTY_IMAGES = (
    SERVICES.prometheus.image,
    SERVICES.grafana.image,
    SERVICES.alertmanager.image,
    SERVICES.node_exporter.image,
)


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
    return [*command, *_build_arg_flags(image.build_args), "."]


def _build_arg_flags(build_args: dict[str, str]) -> list[str]:
    """`--build-arg`s (plus MLOPS_BASE_IMAGE) and the optional CA bundle secret."""
    args = dict(build_args)
    base_image = os.environ.get("MLOPS_BASE_IMAGE")
    if base_image:
        args["BASE_IMAGE"] = base_image
    flags: list[str] = []
    for key, value in args.items():
        flags += ["--build-arg", f"{key}={value}"]
    ca_bundle = os.environ.get("MLOPS_BUILD_CA_BUNDLE")
    if ca_bundle:
        flags += ["--secret", f"id=extra_ca,src={ca_bundle}"]
    return flags


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
    remove_stale_archives(cache_dir, keep=path)
    log(f"image: saving {', '.join(images)} to {path.name}")
    # A partial file of this run's own: two runs on one machine (two stacks at once) may save the
    # same archive together; each renames a complete file into place, atomically.
    descriptor, partial_name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".partial", dir=cache_dir)
    partial = Path(partial_name)
    with os.fdopen(descriptor, "wb") as out:
        save = subprocess.Popen([docker_cli(), "save", *images], stdout=subprocess.PIPE)
        gzip = subprocess.run(["gzip", "-1"], stdin=save.stdout, stdout=out, check=False)
        if save.stdout is not None:
            save.stdout.close()
        if save.wait() != 0 or gzip.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError("docker save | gzip failed")
    os.replace(partial, path)
    return ImageArchive(path, images)


def remove_stale_archives(cache_dir: Path, keep: Path, min_age_seconds: float = STALE_ARCHIVE_AGE) -> None:
    """Old archives go; recent ones may belong to another run going on now (another stack)."""
    cutoff = time.time() - min_age_seconds
    for stale in cache_dir.glob("stack-images-*.tar.gz*"):
        try:
            if stale != keep and stale.stat().st_mtime < cutoff:
                stale.unlink()
        except FileNotFoundError:
            continue  # removed by that other run meanwhile


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


# The one tag per image that BuildKit's registry cache rewrites on every build (so it lives in a
# registry with mutable tags, never the release registry, whose tags are immutable).
CACHE_TAG = "buildcache"


@dataclass(frozen=True)
class ReleaseTarget:
    registry: str  # e.g. europe-west1-docker.pkg.dev/PROJECT/mlops-images
    tag: str  # the git SHA the images are built from
    cache_registry: str | None = None


def released_repository(image: ImageBuild, registry: str) -> str:
    """`REGISTRY/api` for `mlops-platform/api:0.1.0`: the image's last path part, no tag."""
    return f"{registry}/{image.name.rsplit('/', 1)[-1].split(':', 1)[0]}"


def release_command(image: ImageBuild, target: ReleaseTarget, metadata_file: Path) -> list[str]:
    """The `docker buildx build --push` argv: VM platform, SBOM and provenance, digest to a file."""
    repository = released_repository(image, target.registry)
    command = [docker_cli(), "buildx", "build", "-f", image.dockerfile, "--platform", HOST_PLATFORM]
    command += ["-t", f"{repository}:{target.tag}", "--push", "--metadata-file", str(metadata_file)]
    # BuildKit attestations, pushed with the image: an SPDX SBOM of its contents and SLSA
    # provenance (mode=max: the full build definition; build args carry no secret here).
    command += ["--sbom=true", "--provenance=mode=max"]
    if target.cache_registry:
        cache = f"{released_repository(image, target.cache_registry)}:{CACHE_TAG}"
        command += ["--cache-from", f"type=registry,ref={cache}"]
        # mode=max caches every stage; an OCI image manifest is what Artifact Registry stores.
        command += [
            "--cache-to",
            f"type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true",
        ]
    return [*command, *_build_arg_flags(image.build_args), "."]


def pinned_to_releases(image: ImageBuild, digests: dict[str, str]) -> ImageBuild:
    """The image with any build arg naming an image released before it replaced by its digest
    reference (the trainer starts FROM the MLflow image just pushed, not a local name)."""
    args = {key: digests.get(value, value) for key, value in image.build_args.items()}
    return ImageBuild(image.name, image.dockerfile, args)


def release(target: ReleaseTarget, log: Log) -> dict[str, str]:
    """Build and push every own image; return {name config/ pins: REGISTRY/NAME@sha256:...}."""
    digests: dict[str, str] = {}
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    with tempfile.TemporaryDirectory(prefix="image-metadata-") as scratch:
        for image in OWN_IMAGES:
            metadata_file = Path(scratch) / "metadata.json"
            command = release_command(pinned_to_releases(image, digests), target, metadata_file)
            log(
                f"image: releasing {image.name} as {released_repository(image, target.registry)}:{target.tag}"
            )
            result = subprocess.run(command, cwd=REPO_ROOT, env=env, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"releasing {image.name} failed (docker buildx exit {result.returncode})")
            digest = json.loads(metadata_file.read_text()).get("containerimage.digest", "")
            if not digest.startswith("sha256:"):
                raise RuntimeError(f"docker buildx recorded no digest for {image.name}")
            digests[image.name] = f"{released_repository(image, target.registry)}@{digest}"
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.images", description=__doc__)
    parser.add_argument(
        "command",
        choices=["build", "archive", "release"],
        help="build the images, or also archive them, or push them to --registry",
    )
    parser.add_argument("--registry", help="release: registry path the images are pushed to")
    parser.add_argument("--tag", help="release: tag of every pushed image (the git SHA)")
    parser.add_argument("--cache-registry", help="release: registry path of BuildKit's layer cache")
    parser.add_argument("--digests-file", type=Path, help="release: where the JSON map of digests goes")
    args = parser.parse_args(argv)
    if args.command == "release" and not (args.registry and args.tag and args.digests_file):
        parser.error("release needs --registry, --tag and --digests-file")
    try:
        if args.command == "build":
            build_own_images(print)
        elif args.command == "archive":
            print(prepare_archive(print).path)
        else:
            digests = release(ReleaseTarget(args.registry, args.tag, args.cache_registry), print)
            args.digests_file.parent.mkdir(parents=True, exist_ok=True)
            args.digests_file.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")
            print(f"image: digests of {len(digests)} images in {args.digests_file}")
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
