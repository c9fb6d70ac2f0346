"""The background flusher and the start-up check of files it never reached."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from catalogsync.transfer import durability
from catalogsync.transfer.durability import Flusher


class Synced:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, ids: list[int]) -> None:
        with self.lock:
            self.ids.extend(ids)


def _files(tmp_path: Path, names: list[str]) -> list[Path]:
    paths = []
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
        paths.append(path)
    return paths


def test_queued_files_are_fsynced_then_reported(tmp_path, monkeypatch):
    flushed: list[Path] = []
    folders: list[Path] = []
    monkeypatch.setattr(durability, "fsync_file", flushed.append)
    monkeypatch.setattr(durability, "fsync_dir", folders.append)
    synced = Synced()
    flusher = Flusher(synced, batch_delay=0.2)
    paths = _files(tmp_path, ["a/1.mp3", "a/2.mp3", "b/3.mp3"])
    for n, path in enumerate(paths, start=1):
        flusher.add(n, path)
    assert flusher.drain(timeout=10)
    assert sorted(synced.ids) == [1, 2, 3]
    assert sorted(flushed) == sorted(paths)
    # One batch: each folder is fsynced once, after its files.
    assert sorted(folders) == [tmp_path / "a", tmp_path / "b"]
    assert flusher.pending == 0
    flusher.close()


def test_a_file_that_cannot_be_flushed_stays_unflushed_and_is_reported(tmp_path):
    errors: list[tuple[Path, OSError]] = []
    synced = Synced()
    flusher = Flusher(synced, on_error=lambda path, exc: errors.append((path, exc)))
    (good,) = _files(tmp_path, ["good.mp3"])
    gone = tmp_path / "gone.mp3"
    flusher.add(1, good)
    flusher.add(2, gone)
    assert flusher.close(timeout=10)
    assert synced.ids == [1]
    assert [path for path, _ in errors] == [gone]
    assert isinstance(errors[0][1], FileNotFoundError)


def test_a_failing_callback_does_not_stop_the_flusher(tmp_path, caplog):
    calls: list[list[int]] = []

    def on_flushed(ids: list[int]) -> None:
        calls.append(ids)
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    flusher = Flusher(on_flushed, batch_delay=0)
    first, second = _files(tmp_path, ["1.mp3", "2.mp3"])
    flusher.add(1, first)
    assert flusher.drain(timeout=10)
    flusher.add(2, second)
    assert flusher.close(timeout=10)
    assert calls == [[1], [2]]
    assert "could not mark 1 flushed files as synced" in caplog.text


def test_after_close_files_are_flushed_inline(tmp_path):
    synced = Synced()
    flusher = Flusher(synced)
    flusher.close()
    (path,) = _files(tmp_path, ["late.mp3"])
    flusher.add(7, path)
    assert synced.ids == [7]


def test_drain_times_out_while_a_flush_is_stuck(tmp_path, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(durability, "fsync_file", lambda path: release.wait(10))
    flusher = Flusher(Synced(), batch_delay=0)
    (path,) = _files(tmp_path, ["slow.mp3"])
    flusher.add(1, path)
    assert flusher.drain(timeout=0.2) is False
    assert flusher.pending == 1
    release.set()
    assert flusher.close(timeout=10)


class FakeCatalog:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.synced: list[int] = []
        self.forgotten: list[int] = []

    def unflushed_files(self) -> list[dict]:
        return self.rows

    def mark_files_flushed(self, ids: list[int]) -> None:
        self.synced.extend(ids)

    def forget_local_file(self, file_id: int) -> None:
        self.forgotten.append(file_id)


@pytest.mark.parametrize(
    ("content", "row_size", "row_sha", "problem"),
    [
        (b"abc", 3, None, None),
        (b"abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", None),
        (b"ab", 3, None, "2 bytes, expected 3"),
        (
            b"\0\0\0",
            3,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "content does not match its SHA-256",
        ),
        (None, 3, None, "missing"),
    ],
)
def test_verify_keeps_sound_files_and_drops_damaged_ones(
    tmp_path, content, row_size, row_sha, problem
):
    path = tmp_path / "lib" / "x" / "song.mp3"
    path.parent.mkdir(parents=True)
    if content is not None:
        path.write_bytes(content)
    catalog = FakeCatalog(
        [
            {
                "id": 5,
                "target": str(tmp_path / "lib"),
                "relative_path": "x/song.mp3",
                "file_size_bytes": row_size,
                "sha256": row_sha,
            }
        ]
    )
    report = durability.verify_unflushed_files(catalog)
    if problem is None:
        assert (report.kept, report.dropped, catalog.synced) == (1, [], [5])
        assert path.read_bytes() == content
    else:
        assert report.dropped == [f"x/song.mp3 ({problem})"]
        assert catalog.forgotten == [5] and catalog.synced == []
        assert not path.exists(), "a damaged file is removed, never left to look complete"


def test_verify_keeps_a_sound_file_the_disk_will_not_confirm(tmp_path, monkeypatch):
    import errno

    def refuse(path: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(durability, "fsync_file", refuse)
    path = tmp_path / "lib" / "song.mp3"
    path.parent.mkdir()
    path.write_bytes(b"abc")
    catalog = FakeCatalog(
        [
            {
                "id": 9,
                "target": str(tmp_path / "lib"),
                "relative_path": "song.mp3",
                "file_size_bytes": 3,
                "sha256": None,
            }
        ]
    )
    report = durability.verify_unflushed_files(catalog)
    assert report.unflushed == ["song.mp3 (Input/output error)"]
    assert (report.kept, report.dropped, catalog.synced, catalog.forgotten) == (0, [], [], [])
    assert path.read_bytes() == b"abc"
