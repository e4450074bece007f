"""The released images by digest (`MLOPS_IMAGE_DIGESTS`), as the program and the entry point use them.

CI's release (`python -m stacks.images release`) hands `pulumi up` a JSON object from each own
image name of config/services.py to `REGISTRY/NAME@sha256:<64 hex>`. With it the VM pulls exactly
those images (registry delivery); without it `pulumi up` builds and ships an archive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from config import stack_layout as layout
from config.services import API_IMAGE, EDGE_IMAGE, MLFLOW_IMAGE, OWN_IMAGE_NAMES, TRAINER_IMAGE

ENV_IMAGE_DIGESTS = "MLOPS_IMAGE_DIGESTS"
# The compose variable that names each own image (the compose file defaults it to the image name).
IMAGE_VARIABLES = {
    API_IMAGE: layout.API_IMAGE_VARIABLE,
    MLFLOW_IMAGE: layout.MLFLOW_IMAGE_VARIABLE,
    TRAINER_IMAGE: layout.TRAINER_IMAGE_VARIABLE,
    EDGE_IMAGE: layout.EDGE_IMAGE_VARIABLE,
}
# A registry host (a dot or a port, as Docker requires to tell it from a Docker Hub user), a
# repository path, and a sha256 digest: a reference no later push can move.
_REFERENCE = re.compile(
    r"(?P<host>[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]+(:\d+)?|[a-z0-9.-]+:\d+)"
    r"/(?P<path>[a-z0-9]+([._/-][a-z0-9]+)*)@sha256:[0-9a-f]{64}"
)

ImageDigests = dict[str, str]


class ImageDigestsError(ValueError):
    """The digests map is malformed; the message says what, not where it came from."""


@dataclass(frozen=True)
class ArtifactRepository:
    """An Artifact Registry repository, from `LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/...`."""

    location: str
    project: str
    repository: str


def parse_image_digests(text: str) -> ImageDigests:
    """The map from its JSON text, checked: exactly the own images, each by digest."""
    try:
        found = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImageDigestsError(f"not JSON ({error.msg})") from None
    if not isinstance(found, dict):
        raise ImageDigestsError("must be a JSON object from image name to REGISTRY/NAME@sha256:DIGEST")
    missing = sorted(set(OWN_IMAGE_NAMES) - set(found))
    unknown = sorted(set(found) - set(OWN_IMAGE_NAMES))
    if missing or unknown:
        raise ImageDigestsError(
            f"keys must be the stack's own images {sorted(OWN_IMAGE_NAMES)}; "
            f"missing {missing}, unknown {unknown}"
        )
    for name, reference in found.items():
        if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
            raise ImageDigestsError(f"{name}: {reference!r} is not HOST/PATH@sha256:<64 hex>")
    return {name: found[name] for name in sorted(found)}


def digests_from_environment(environ: Mapping[str, str]) -> ImageDigests | None:
    """`MLOPS_IMAGE_DIGESTS` checked, or None when unset or empty (archive delivery)."""
    text = environ.get(ENV_IMAGE_DIGESTS, "").strip()
    if not text:
        return None
    try:
        return parse_image_digests(text)
    except ImageDigestsError as error:
        raise ImageDigestsError(f"environment variable {ENV_IMAGE_DIGESTS}: {error}") from None


def to_json(digests: ImageDigests) -> str:
    """Compact and sorted: the entry point's argument, and so the provisioning command, changes
    exactly when a digest does (a new digest re-provisions; the same ones do not)."""
    return json.dumps(digests, sort_keys=True, separators=(",", ":"))


def registry_host(reference: str) -> str:
    return reference.split("/", 1)[0]


def compose_variables(digests: ImageDigests) -> dict[str, str]:
    """The `.env` lines the stack role writes: each image's variable set to its digest reference."""
    return {IMAGE_VARIABLES[name]: reference for name, reference in sorted(digests.items())}


def registry_logins(digests: ImageDigests) -> list[str]:
    """Hosts Docker must log in to with the VM's service account token: Artifact Registry's only
    (`*.pkg.dev`). Another registry (a test's local one, a public one) is pulled anonymously."""
    return sorted({registry_host(ref) for ref in digests.values() if registry_host(ref).endswith(".pkg.dev")})


def artifact_repository(digests: ImageDigests) -> ArtifactRepository | None:
    """The one Artifact Registry repository the images live in, or None if they are elsewhere.

    Parsed from the references rather than a stack key: the digests name the repository already,
    and a second statement of it could disagree with them."""
    repositories = set()
    for name, reference in digests.items():
        host, _, path = reference.partition("@")[0].partition("/")
        if not host.endswith(layout.ARTIFACT_REGISTRY_HOST_SUFFIX):
            continue
        parts = path.split("/")
        if len(parts) < 3:
            raise ImageDigestsError(
                f"{name}: {reference!r} is not LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE"
            )
        location = host.removesuffix(layout.ARTIFACT_REGISTRY_HOST_SUFFIX)
        repositories.add(ArtifactRepository(location=location, project=parts[0], repository=parts[1]))
    if len(repositories) > 1:
        raise ImageDigestsError("the images must all come from one Artifact Registry repository")
    return repositories.pop() if repositories else None
