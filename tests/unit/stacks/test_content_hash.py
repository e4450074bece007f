"""Provisioning's fingerprint: tracked inputs and provisioning code only, in a real git checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stacks.content_hash import NotAGitCheckoutError, content_hash, entry_point_modules
from tests.support.git_checkout import ENTRY_POINT_SOURCE, git, make_checkout
from tests.support.pulumi_harness import REPO_ROOT


def test_an_untracked_or_ignored_file_does_not_count(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    before = content_hash(root)
    (root / "app" / "sub" / "scratch.txt").write_text("not added to git")
    (root / "app" / "__pycache__").mkdir()
    (root / "app" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "config" / "stale.pyc").write_bytes(b"\0")
    (root / "README.md").write_text("not shipped")
    assert content_hash(root) == before
    git(root, "add", "app/sub/scratch.txt")
    assert content_hash(root) != before


def test_the_entry_point_and_what_it_imports_count(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    before = content_hash(root)
    (root / "stacks" / "provision.py").write_text(ENTRY_POINT_SOURCE + "# a changed entry point\n")
    after_entry_point = content_hash(root)
    assert after_entry_point != before
    # Imported indirectly (provision -> helper -> deep): still provisioning code.
    (root / "stacks" / "deep.py").write_text("X = 2\n")
    assert content_hash(root) != after_entry_point


def test_the_pulumi_program_modules_do_not_count(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    before = content_hash(root)
    (root / "stacks" / "program.py").write_text("# a new output, nothing provisioning runs\n")
    assert content_hash(root) == before


def test_the_entry_points_imports_are_derived_from_its_source() -> None:
    modules = entry_point_modules(REPO_ROOT)
    assert {
        "stacks/provision.py",
        "stacks/playbook_run.py",
        "stacks/provision_env.py",
        "stacks/images.py",
    } <= set(modules)
    assert "stacks/program.py" not in modules
    assert "stacks/compute.py" not in modules


def test_an_edited_tracked_file_counts_before_it_is_committed(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    first = content_hash(root)
    assert content_hash(root) == first
    (root / "playbooks" / "site.yml").write_text("- hosts: all\n  become: true\n")
    changed = content_hash(root)
    assert changed != first
    # The compose file and the dependency pins the images install are inputs too.
    (root / "constraints.txt").write_text("flask==3.1.4\n")
    after_pins = content_hash(root)
    assert after_pins != changed
    (root / "deploy" / "sub" / "file.txt").write_text("services: {api: {}}\n")
    assert content_hash(root) != after_pins


def test_paths_count_not_only_contents(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    before = content_hash(root)
    git(root, "mv", "app/sub/file.txt", "app/sub/renamed.txt")
    assert content_hash(root) != before


def test_creation_order_does_not_count(tmp_path: Path) -> None:
    hashes = []
    for index, names in enumerate((["x", "y", "z"], ["z", "x", "y"])):
        root = make_checkout(tmp_path / f"repo{index}")
        for name in names:
            (root / "config" / name).write_text(name)
            git(root, "add", f"config/{name}")
        hashes.append(content_hash(root))
    assert hashes[0] == hashes[1]


def test_outside_a_git_checkout_the_error_says_so(tmp_path: Path) -> None:
    shutil.copytree(
        make_checkout(tmp_path / "repo"), tmp_path / "copy", ignore=shutil.ignore_patterns(".git")
    )
    with pytest.raises(NotAGitCheckoutError, match="is not a git checkout"):
        content_hash(tmp_path / "copy")
