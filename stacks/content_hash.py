"""A deterministic fingerprint of what provisioning ships to the VM and the code that ships it.

It is a `triggers` entry of the provisioning command: any change in these files re-provisions,
and an unchanged tree leaves the command alone. Only files git tracks count (`git ls-files`), so
caches, virtualenvs, local stack data and anything .gitignore'd never trigger a run; their
working-tree contents are hashed, so an edited tracked file counts before it is committed.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

# Everything the VM's stack is built from: roles, the API source, settings, dashboards, the
# compose file and image recipes (deploy/), and the dependency pins the images install.
PROVISIONING_INPUTS = (
    "playbooks",
    "app",
    "config",
    "dashboards",
    "deploy",
    "constraints.txt",
    "pyproject.toml",
)
# The provisioning entry point; it and every stacks module it imports (recursively) count too.
ENTRY_POINT = "stacks/provision.py"
PACKAGE = "stacks"


class NotAGitCheckoutError(RuntimeError):
    """The fingerprint is taken over tracked files: it needs a git checkout."""


# `import stacks.x`, `from stacks.x import ...`, `from stacks import a, b` or `(a,\n b)`. A pattern,
# not `ast`: CPython 3.11's ast.parse can fail with "AST constructor recursion depth mismatch"
# when called deep inside the Pulumi runtime's stack (fixed in later releases).
_IMPORT = re.compile(
    rf"^\s*(?:import\s+{PACKAGE}\.(\w+)|from\s+{PACKAGE}(?:\.(\w+))?\s+import\s+(\([^)]*\)|[^\n]*))",
    re.MULTILINE,
)


def _imported_modules(source: str) -> set[str]:
    """Names of the `stacks` modules a source imports (a `from stacks import name` may be one)."""
    modules: set[str] = set()
    for imported, from_module, names in _IMPORT.findall(source):
        if imported or from_module:
            modules.add(imported or from_module)
        else:
            modules.update(re.findall(r"\w+", names.split("#")[0]))
    return modules


def entry_point_modules(root: Path, entry_point: str = ENTRY_POINT) -> list[str]:
    """The entry point and the `stacks` modules it imports, directly or not (repo-relative paths)."""
    found: set[str] = set()
    pending = [entry_point]
    while pending:
        relative = pending.pop()
        path = root / relative
        if relative in found or not path.is_file():
            continue
        found.add(relative)
        for module in _imported_modules(path.read_text(encoding="utf-8")):
            pending.append(f"{PACKAGE}/{module}.py")
    package_init = f"{PACKAGE}/__init__.py"
    if (root / package_init).is_file():
        found.add(package_init)
    return sorted(found)


def tracked_files(root: Path, paths: Iterable[str]) -> list[str]:
    """The files git tracks under `paths` (repo-relative, sorted); never untracked or ignored ones."""
    result = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--", *sorted(set(paths))],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise NotAGitCheckoutError(
            f"{root} is not a git checkout (git ls-files: {result.stderr.decode(errors='replace').strip()}); "
            "provisioning's fingerprint covers tracked files only: run `pulumi up` from a clone"
        )
    return sorted({name for name in result.stdout.decode().split("\0") if name})


def content_hash(root: Path, folders: Iterable[str] = PROVISIONING_INPUTS) -> str:
    """sha256 over sorted relative paths and contents of the tracked inputs and provisioning code."""
    digest = hashlib.sha256()
    for name in tracked_files(root, [*folders, *entry_point_modules(root)]):
        path = root / name
        if not path.is_file():
            continue  # deleted in the working tree, not yet in the index: not shipped
        content = path.read_bytes()
        # Length-prefixed fields: moving bytes between a name and a content changes the hash.
        encoded = name.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()
