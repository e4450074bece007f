"""Every action is pinned to a full commit SHA, its comment names the tag, and both agree with
.github/actions-lock.json (the SHAs were looked up in the actions' own repositories)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
LOCK = json.loads((REPO_ROOT / ".github" / "actions-lock.json").read_text())["actions"]
# `uses: owner/repo[/path]@ref # comment`; local reusable workflows (./...) are not actions.
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?:\s+#\s*(?P<comment>.*))?$")
PIN = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
TAG = re.compile(r"^v\d+(\.\d+){0,2}$")


def uses_lines() -> list[tuple[str, str, str | None]]:
    found = []
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            match = USES.match(line)
            if match and not match["ref"].startswith("./"):
                found.append((path.name, match["ref"], match["comment"]))
    return found


def test_there_are_workflows_and_actions_to_check() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "release.yml", "deploy.yml"}
    assert len(uses_lines()) >= 10


@pytest.mark.parametrize(("workflow", "ref", "comment"), uses_lines())
def test_each_action_is_pinned_to_the_locked_sha_with_its_tag(
    workflow: str, ref: str, comment: str | None
) -> None:
    pin = PIN.match(ref)
    assert pin, f"{workflow}: {ref} is not pinned to a 40-hex commit SHA"
    assert TAG.match((comment or "").strip()), f"{workflow}: {ref} needs its tag as a comment"
    locked: dict[str, Any] = LOCK.get(pin["action"], {})
    assert locked, f"{workflow}: {pin['action']} is not in .github/actions-lock.json"
    assert (pin["sha"], (comment or "").strip()) == (locked["sha"], locked["tag"]), workflow


def test_the_lock_lists_only_actions_in_use() -> None:
    used = {PIN.match(ref)["action"] for _, ref, _ in uses_lines() if PIN.match(ref)}  # type: ignore[index]
    assert set(LOCK) == used


def test_the_pulumi_cli_matches_the_pinned_sdk() -> None:
    constraints = (REPO_ROOT / "constraints.txt").read_text()
    sdk = re.search(r"^pulumi==(\S+)$", constraints, re.MULTILINE)
    assert sdk
    versions = set(
        re.findall(r"pulumi-version:\s*(\S+)", (REPO_ROOT / ".github/workflows/deploy.yml").read_text())
    )
    assert versions == {sdk[1]}
