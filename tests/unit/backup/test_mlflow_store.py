"""deploy/backup/mlflow_store.py on a real SQLite store: a consistent snapshot, a checked restore."""

from __future__ import annotations

import sqlite3
import tarfile
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.script_module import load_script

store = load_script("deploy/backup/mlflow_store.py")


def _make_store(root: Path) -> tuple[Path, Path]:
    """MLflow's three tables the backup reads (a subset of its schema), and two artifacts."""
    db, artifacts = root / "db" / "mlflow.db", root / "artifacts"
    db.parent.mkdir(parents=True)
    (artifacts / "1" / "run-a" / "artifacts" / "model").mkdir(parents=True)
    (artifacts / "1" / "run-a" / "artifacts" / "model" / "model.onnx").write_bytes(b"onnx-bytes")
    (artifacts / "1" / "run-a" / "artifacts" / "metadata.json").write_text("{}", encoding="utf-8")
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(
            """
            CREATE TABLE runs (run_uuid TEXT PRIMARY KEY);
            CREATE TABLE model_versions (name TEXT, version INTEGER);
            CREATE TABLE registered_model_aliases (name TEXT, alias TEXT, version INTEGER);
            INSERT INTO runs VALUES ('run-a'), ('run-b');
            INSERT INTO model_versions VALUES ('iris-classifier', 1), ('iris-classifier', 2);
            INSERT INTO registered_model_aliases VALUES ('iris-classifier', 'champion', 2);
            """
        )
        conn.commit()
    return db, artifacts


def _runs(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return sorted(row[0] for row in conn.execute("SELECT run_uuid FROM runs"))


def test_snapshot_copies_only_committed_data_while_a_writer_holds_a_transaction(tmp_path: Path) -> None:
    db, artifacts = _make_store(tmp_path / "live")
    archive = tmp_path / "out" / "mlops-backup-20260102T030405Z.tar.gz"
    archive.parent.mkdir()
    with closing(sqlite3.connect(db, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO runs VALUES ('uncommitted')")
        store.snapshot(db, artifacts, archive, "20260102T030405Z")
        writer.execute("ROLLBACK")
    unpacked = tmp_path / "unpacked"
    manifest = store.unpack(archive, unpacked)
    assert _runs(unpacked / "mlflow.db") == ["run-a", "run-b"]
    assert manifest["aliases"] == {"iris-classifier@champion": "2"}
    assert manifest["runs"] == 2
    assert manifest["model_versions"] == 2
    assert (
        unpacked / "artifacts" / "1" / "run-a" / "artifacts" / "model" / "model.onnx"
    ).read_bytes() == b"onnx-bytes"
    assert not list(archive.parent.glob("*.partial"))
    assert not list(archive.parent.glob(".snapshot-*"))


def test_restore_replaces_the_database_and_the_artifacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, artifacts = _make_store(tmp_path / "live")
    archive = tmp_path / "backup.tar.gz"
    store.snapshot(db, artifacts, archive, "20260102T030405Z")
    # After the backup: a new run, a new artifact, a stale journal; then the restore.
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO runs VALUES ('after-backup')")
        conn.commit()
    (artifacts / "2").mkdir()
    (artifacts / "2" / "new.txt").write_text("new", encoding="utf-8")
    db.with_name("mlflow.db-journal").write_bytes(b"stale")
    store.restore(db, artifacts, archive)
    assert _runs(db) == ["run-a", "run-b"]
    assert sorted(p.name for p in artifacts.iterdir()) == ["1"]
    assert not db.with_name("mlflow.db-journal").exists()
    assert "manifest: " in capsys.readouterr().out


def test_an_archive_with_an_escaping_member_is_refused_and_nothing_is_replaced(tmp_path: Path) -> None:
    db, artifacts = _make_store(tmp_path / "live")
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x", encoding="utf-8")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(payload, arcname="../outside.txt")
    assert (
        store.main(["restore", "--db", str(db), "--artifacts", str(artifacts), "--archive", str(evil)]) == 1
    )
    assert not (tmp_path / "live" / "outside.txt").exists()
    assert _runs(db) == ["run-a", "run-b"]
    assert (artifacts / "1" / "run-a" / "artifacts" / "metadata.json").exists()


def test_an_archive_without_a_database_is_not_a_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, artifacts = _make_store(tmp_path / "live")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    assert (
        store.main(["restore", "--db", str(db), "--artifacts", str(artifacts), "--archive", str(empty)]) == 1
    )
    assert "not a backup of this stack" in capsys.readouterr().out
    assert _runs(db) == ["run-a", "run-b"]


def test_a_snapshot_without_a_database_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "artifacts").mkdir()
    argv = ["snapshot", "--db", str(tmp_path / "missing.db"), "--artifacts", str(tmp_path / "artifacts"),
            "--archive", str(tmp_path / "out.tar.gz"), "--id", "x"]  # fmt: skip
    assert store.main(argv) == 1
    assert "no MLflow database" in capsys.readouterr().out
    assert not (tmp_path / "missing.db").exists()  # never created by the attempt
