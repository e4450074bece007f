"""A small git checkout shaped like this repo's provisioning inputs, for fingerprint tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stacks.content_hash import PROVISIONING_INPUTS

ENTRY_POINT_SOURCE = "from stacks import helper\nfrom stacks.provision_env import ENV\n"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def make_checkout(root: Path) -> Path:
    """A git checkout with every provisioning input and an entry point importing two modules."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    for name in PROVISIONING_INPUTS:
        if "." in name:  # a file input (constraints.txt, pyproject.toml)
            (root / name).write_text(f"content of {name}\n")
            continue
        (root / name / "sub").mkdir(parents=True, exist_ok=True)
        (root / name / "sub" / "file.txt").write_text(f"content of {name}\n")
    (root / "playbooks" / "site.yml").write_text("- hosts: all\n")
    (root / "stacks").mkdir()
    (root / "stacks" / "__init__.py").write_text("")
    (root / "stacks" / "provision.py").write_text(ENTRY_POINT_SOURCE)
    (root / "stacks" / "helper.py").write_text("from stacks.deep import X\n")
    (root / "stacks" / "deep.py").write_text("X = 1\n")
    (root / "stacks" / "provision_env.py").write_text("ENV = 'X'\n")
    (root / "stacks" / "program.py").write_text("# the Pulumi program: not shipped\n")
    (root / ".gitignore").write_text("*.pyc\n__pycache__/\n")
    git(root, "add", "-A")
    return root
