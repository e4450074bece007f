"""The release path of stacks/images.py: what `docker buildx` is asked for, and the digest map the
deploy consumes. A stand-in docker CLI records each call and answers with a digest."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from config.services import MLFLOW_IMAGE, OWN_IMAGE_NAMES, TRAINER_IMAGE
from config.stack_layout import HOST_PLATFORM
from stacks import images

REGISTRY = "europe-west1-docker.pkg.dev/test-project-123/mlops-images"
CACHE = "europe-west1-docker.pkg.dev/test-project-123/mlops-build-cache"
SHA = "0123456789abcdef0123456789abcdef01234567"

# Writes BuildKit's metadata file with a digest derived from the tag, and logs its argv.
FAKE_DOCKER = """#!/usr/bin/env python3
import hashlib, json, os, sys
argv = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
tag = argv[argv.index("-t") + 1]
digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
with open(argv[argv.index("--metadata-file") + 1], "w") as out:
    json.dump({"containerimage.digest": digest}, out)
"""


def digest_of(tag: str) -> str:
    return "sha256:" + hashlib.sha256(tag.encode()).hexdigest()


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("MLOPS_DOCKER", str(script))
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def value_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_a_release_pushes_for_the_vms_platform_with_sbom_and_provenance(tmp_path: Path) -> None:
    target = images.ReleaseTarget(REGISTRY, SHA, CACHE)
    argv = images.release_command(images.OWN_IMAGES[0], target, tmp_path / "m.json")
    assert argv[1:3] == ["buildx", "build"]
    assert value_after(argv, "--platform") == HOST_PLATFORM
    assert value_after(argv, "-t") == f"{REGISTRY}/mlflow:{SHA}"
    assert value_after(argv, "--metadata-file") == str(tmp_path / "m.json")
    assert {"--push", "--sbom=true", "--provenance=mode=max"} <= set(argv)
    cache = f"{CACHE}/mlflow:{images.CACHE_TAG}"
    assert value_after(argv, "--cache-from") == f"type=registry,ref={cache}"
    assert value_after(argv, "--cache-to").startswith(f"type=registry,ref={cache},mode=max,")
    assert argv[-1] == "."


def test_without_a_cache_registry_no_cache_is_exported(tmp_path: Path) -> None:
    argv = images.release_command(images.OWN_IMAGES[0], images.ReleaseTarget(REGISTRY, SHA), tmp_path / "m")
    assert "--cache-to" not in argv
    assert "--cache-from" not in argv


def test_every_image_is_released_and_recorded_by_digest(fake_docker: Path) -> None:
    digests = images.release(images.ReleaseTarget(REGISTRY, SHA, CACHE), lambda line: None)
    assert set(digests) == set(OWN_IMAGE_NAMES)
    for image in images.OWN_IMAGES:
        repository = images.released_repository(image, REGISTRY)
        assert digests[image.name] == f"{repository}@{digest_of(f'{repository}:{SHA}')}"
    assert [value_after(argv, "-t") for argv in calls(fake_docker)] == [
        f"{images.released_repository(image, REGISTRY)}:{SHA}" for image in images.OWN_IMAGES
    ]


def test_the_trainer_starts_from_the_mlflow_image_just_released_by_digest(fake_docker: Path) -> None:
    digests = images.release(images.ReleaseTarget(REGISTRY, SHA), lambda line: None)
    trainer_call = next(
        argv for argv in calls(fake_docker) if value_after(argv, "-t").startswith(f"{REGISTRY}/trainer:")
    )
    build_args = [trainer_call[i + 1] for i, arg in enumerate(trainer_call) if arg == "--build-arg"]
    assert f"MLFLOW_IMAGE={digests[MLFLOW_IMAGE]}" in build_args
    assert "@sha256:" in digests[MLFLOW_IMAGE]
    assert TRAINER_IMAGE in digests


def test_the_cli_writes_the_digest_map(fake_docker: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "digests.json"
    code = images.main(["release", "--registry", REGISTRY, "--tag", SHA, "--digests-file", str(out)])
    assert code == 0
    written = json.loads(out.read_text())
    assert set(written) == set(OWN_IMAGE_NAMES)
    assert all(value.startswith(f"{REGISTRY}/") and "@sha256:" in value for value in written.values())


def test_a_failed_push_stops_the_release_with_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = tmp_path / "docker"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setenv("MLOPS_DOCKER", str(failing))
    out = tmp_path / "digests.json"
    assert images.main(["release", "--registry", REGISTRY, "--tag", SHA, "--digests-file", str(out)]) == 1
    assert not out.exists()


def test_release_refuses_to_run_without_registry_tag_and_file() -> None:
    with pytest.raises(SystemExit):
        images.main(["release", "--registry", REGISTRY])
