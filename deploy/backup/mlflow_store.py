"""Snapshot or restore MLflow's store: its SQLite database and its artifacts, as one archive.

Runs inside a one-off container of the stack's MLflow image (`docker compose run mlflow`, started by
the host's backup script or the restore playbook), so it sees MLflow's volumes at their own paths
and runs as MLflow's user. Standard library only: the image's Python runs it.

    mlflow_store.py snapshot --db DB --artifacts DIR --archive OUT.tar.gz --id ID
    mlflow_store.py restore  --db DB --artifacts DIR --archive IN.tar.gz

snapshot: the database through SQLite's online backup API (a consistent copy while MLflow keeps
writing; never the live file), checked with `PRAGMA integrity_check`, then the artifacts. The
database comes first: every artifact it references was complete before it was copied.
restore: only while MLflow is stopped. Checks the archive first (member names, the database's
integrity), then replaces the database (stale journal files removed) and the artifacts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path, PurePosixPath

DB_MEMBER = "mlflow.db"
ARTIFACTS_MEMBER = "artifacts"
MANIFEST_MEMBER = "manifest.json"
FORMAT_VERSION = 1
# SQLite's companions of a database file: left over from another database, they would corrupt it.
SQLITE_COMPANIONS = ("-journal", "-wal", "-shm")


class StoreError(Exception):
    """A failure to report on one line."""


def say(message: str) -> None:
    print(f"mlflow-store: {message}", flush=True)


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy through the online backup API (it restarts if MLflow commits meanwhile)."""
    if not source.is_file():
        raise StoreError(f"no MLflow database at {source}")
    # A normal connection that only reads: a read-only one could not roll back a journal left
    # by a crashed writer.
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    check_database(target)


def check_database(path: Path) -> None:
    with closing(read_only(path)) as db:
        result = db.execute("PRAGMA integrity_check").fetchone()
    if result is None or result[0] != "ok":
        raise StoreError(f"database copy {path.name} fails SQLite's integrity check: {result}")


def registry_summary(path: Path) -> dict[str, object]:
    """Counts and aliases, for the log line and the manifest (MLflow's own tables)."""
    with closing(read_only(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if "runs" in tables else 0
        versions = (
            db.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0]
            if "model_versions" in tables
            else 0
        )
        aliases = (
            db.execute("SELECT name, alias, version FROM registered_model_aliases").fetchall()
            if "registered_model_aliases" in tables
            else []
        )
    return {
        "runs": runs,
        "model_versions": versions,
        "aliases": {f"{name}@{alias}": str(version) for name, alias, version in aliases},
    }


def snapshot(db: Path, artifacts: Path, archive: Path, backup_id: str) -> None:
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".snapshot-") as scratch:
        db_copy = Path(scratch) / DB_MEMBER
        copy_database(db, db_copy)
        summary = registry_summary(db_copy)
        manifest = {"format": FORMAT_VERSION, "id": backup_id, "created": time.time(), **summary}
        (Path(scratch) / MANIFEST_MEMBER).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        partial = archive.with_name(archive.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(Path(scratch) / MANIFEST_MEMBER, arcname=MANIFEST_MEMBER)
            tar.add(db_copy, arcname=DB_MEMBER)
            tar.add(artifacts, arcname=ARTIFACTS_MEMBER, filter=_regular_files_only)
        partial.rename(archive)
    say(
        f"snapshot {backup_id}: {summary['runs']} runs, {summary['model_versions']} model versions, "
        f"aliases {summary['aliases']}, {archive.stat().st_size} bytes"
    )


def _regular_files_only(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return info if info.isfile() or info.isdir() else None


def safe_members(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, PurePosixPath]]:
    """Every member, refused unless a plain file or folder under a relative, clean path."""
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise StoreError(f"archive member {member.name!r} is not a plain relative file or folder")
        yield member, path


def unpack(archive: Path, target: Path) -> dict[str, object]:
    """Unpack into `target` (checked member by member); return the manifest."""
    if not archive.is_file():
        raise StoreError(f"no archive at {archive}")
    with tarfile.open(archive, "r:gz") as tar:
        for member, path in safe_members(tar):
            destination = target.joinpath(*path.parts)
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                raise StoreError(f"archive member {member.name!r} cannot be read")
            with source, destination.open("wb") as out:
                shutil.copyfileobj(source, out)
    for required in (MANIFEST_MEMBER, DB_MEMBER):
        if not (target / required).is_file():
            raise StoreError(f"archive {archive.name} has no {required}: not a backup of this stack")
    manifest: dict[str, object] = json.loads((target / MANIFEST_MEMBER).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT_VERSION:
        raise StoreError(
            f"archive {archive.name} has format {manifest.get('format')}, expected {FORMAT_VERSION}"
        )
    check_database(target / DB_MEMBER)
    return manifest


def replace_artifacts(unpacked: Path, artifacts: Path, scratch: Path) -> None:
    """Empty the artifacts folder (a volume's root: it cannot be renamed) and move the backup's in."""
    for child in artifacts.iterdir():
        if child == scratch:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    if unpacked.is_dir():
        for child in unpacked.iterdir():
            child.rename(artifacts / child.name)


def restore(db: Path, artifacts: Path, archive: Path) -> None:
    # Unpacked next to the artifacts (same volume), so the final moves are renames.
    with tempfile.TemporaryDirectory(dir=artifacts, prefix=".restore-") as scratch:
        manifest = unpack(archive, Path(scratch))
        staged_db = db.with_name(db.name + ".restoring")
        shutil.copyfile(Path(scratch) / DB_MEMBER, staged_db)
        for suffix in SQLITE_COMPANIONS:
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        os.replace(staged_db, db)
        replace_artifacts(Path(scratch) / ARTIFACTS_MEMBER, artifacts, Path(scratch))
    say(
        f"restored {manifest.get('id')}: {manifest.get('runs')} runs, "
        f"{manifest.get('model_versions')} model versions, aliases {manifest.get('aliases')}"
    )
    # The restore playbook reads this line: the API must then serve the backup's champion.
    print(f"manifest: {json.dumps(manifest)}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mlflow_store.py", description=__doc__)
    parser.add_argument("action", choices=["snapshot", "restore"])
    parser.add_argument("--db", type=Path, required=True, help="MLflow's SQLite database")
    parser.add_argument("--artifacts", type=Path, required=True, help="MLflow's artifacts folder")
    parser.add_argument("--archive", type=Path, required=True, help="the backup archive (.tar.gz)")
    parser.add_argument("--id", default="", help="the backup's id (snapshot)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.action == "snapshot":
            snapshot(args.db, args.artifacts, args.archive, args.id)
        else:
            restore(args.db, args.artifacts, args.archive)
    except (StoreError, OSError, sqlite3.Error, tarfile.TarError) as error:
        say(f"FAILED: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
