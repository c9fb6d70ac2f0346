"""A reusable contract test for storage backends: subclass it in a ``Test...`` class."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from catalogsync.errors import StorageUnavailableError, TransferError, TransferStopped
from catalogsync.transfer.backends import PROBE_PREFIX, RemoteFile, StorageBackend
from catalogsync.transfer.ratelimit import TokenBucket
from tests.support.httpserver import pseudo_random

HOSTILE_PATHS = [
    "../x.mp3",
    "/abs/x.mp3",
    "a/../../b.mp3",
    "a/../b.mp3",
    "..",
    ".",
    "",
    "a//b.mp3",
    "a/./b.mp3",
    "a\\..\\..\\b.mp3",
    "..\\x.mp3",
    "a/b\\c.mp3",
    "a/\x00b.mp3",
    "a/\nb.mp3",
    "dir/",
]


def _files_outside(tmp_path: Path, inside: Path) -> set[Path]:
    return {p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(inside)}


class Recorder:
    """An ``on_progress`` that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


class BackendConformance:
    """Checks every backend must pass; override ``make_backend`` and ``storage_dir``."""

    def make_backend(self, tmp_path: Path, *, limiter: TokenBucket | None = None) -> StorageBackend:
        """Build the backend under test, rooted somewhere inside ``tmp_path``."""
        raise NotImplementedError

    def storage_dir(self, tmp_path: Path) -> Path:
        """The local folder that ends up holding what the backend stores."""
        raise NotImplementedError

    def _source(
        self, tmp_path: Path, name: str = "song.mp3", size: int = 200 * 1024, seed: int = 1
    ) -> Path:
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pseudo_random(size, seed=seed))
        return path

    def test_upload_stat_read_delete(self, tmp_path: Path) -> None:
        """Upload -> stat has the size, read gives the bytes back, delete -> stat is None."""
        backend = self.make_backend(tmp_path)
        source = self._source(tmp_path)
        progress = Recorder()
        stored = backend.upload(source, "manifest/Artist/Title.mp3", on_progress=progress)
        size = source.stat().st_size
        assert isinstance(stored, RemoteFile) and stored.size == size
        found = backend.stat("manifest/Artist/Title.mp3")
        assert found is not None and found.size == size
        assert backend.read("manifest/Artist/Title.mp3") == source.read_bytes()
        on_disk = self.storage_dir(tmp_path) / "manifest" / "Artist" / "Title.mp3"
        assert on_disk.read_bytes() == source.read_bytes()
        assert progress.calls[0] == (0, size) and progress.calls[-1] == (size, size)
        done = [d for d, _ in progress.calls]
        assert done == sorted(done)
        backend.delete("manifest/Artist/Title.mp3")
        assert backend.stat("manifest/Artist/Title.mp3") is None
        assert not on_disk.exists()
        backend.delete("manifest/Artist/Title.mp3")  # already gone is fine

    def test_nested_folders_and_odd_names(self, tmp_path: Path) -> None:
        """Missing parent folders are created; spaces, '#', '%', '?' and non-ASCII survive."""
        backend = self.make_backend(tmp_path)
        source = self._source(tmp_path, size=10_000)
        rel = "a/b c/Ä ö #1 %20 ?/Dvořák – Song (2).mp3"
        backend.upload(source, rel)
        assert (self.storage_dir(tmp_path).joinpath(*rel.split("/"))).read_bytes() == (
            source.read_bytes()
        )
        found = backend.stat(rel)
        assert found is not None and found.size == 10_000

    def test_stat_of_missing_file_is_none(self, tmp_path: Path) -> None:
        """stat() of a file (or folder) that does not exist is None."""
        backend = self.make_backend(tmp_path)
        backend.upload(self._source(tmp_path, size=100), "there.mp3")
        assert backend.stat("missing.mp3") is None
        assert backend.stat("no/such/folder/x.mp3") is None

    def test_hostile_paths_are_refused(self, tmp_path: Path) -> None:
        """Paths that could leave the root fail with StorageUnavailableError, writing nothing."""
        backend = self.make_backend(tmp_path)
        source = self._source(tmp_path, size=1000)
        before = _files_outside(tmp_path, self.storage_dir(tmp_path))
        for rel in HOSTILE_PATHS:
            with pytest.raises(StorageUnavailableError) as info:
                backend.upload(source, rel)
            assert "\n" not in str(info.value)
            for method in (backend.stat, backend.read, backend.delete):
                with pytest.raises(StorageUnavailableError):
                    method(rel)
        assert _files_outside(tmp_path, self.storage_dir(tmp_path)) == before
        stored = self.storage_dir(tmp_path)
        assert not stored.exists() or not any(p.is_file() for p in stored.rglob("*"))

    def test_stop_mid_upload(self, tmp_path: Path) -> None:
        """A stop request during a slow (rate-limited) upload raises TransferStopped."""
        limiter = TokenBucket(64 * 1024)
        backend = self.make_backend(tmp_path, limiter=limiter)
        source = self._source(tmp_path, size=1024 * 1024)
        stop = threading.Event()
        timer = threading.Timer(1.0, stop.set)
        progress = Recorder()

        def on_progress(done: int, total: int | None) -> None:
            progress(done, total)
            if done > 0:
                stop.set()

        timer.start()
        try:
            with pytest.raises(TransferStopped):
                backend.upload(
                    source, "slow/song.mp3", should_stop=stop.is_set, on_progress=on_progress
                )
        finally:
            timer.cancel()
        assert all(done < 1024 * 1024 for done, _ in progress.calls)
        self.after_stop(tmp_path, backend, "slow/song.mp3")

    def after_stop(self, tmp_path: Path, backend: StorageBackend, rel: str) -> None:
        """Extra checks after a stopped upload (a backend may leave a partial file)."""
        found = backend.stat(rel)
        assert found is None or found.size < 1024 * 1024

    def test_probe_succeeds_and_cleans_up(self, tmp_path: Path) -> None:
        """probe() passes on a healthy target and leaves no probe file behind."""
        backend = self.make_backend(tmp_path)
        backend.probe()
        root = self.storage_dir(tmp_path)
        assert not [p for p in root.rglob("*") if p.name.startswith(PROBE_PREFIX)]

    def test_upload_twice_overwrites(self, tmp_path: Path) -> None:
        """Uploading to the same path again replaces the file (also with another size)."""
        backend = self.make_backend(tmp_path)
        first = self._source(tmp_path, "one.mp3", size=50_000, seed=1)
        second = self._source(tmp_path, "two.mp3", size=30_000, seed=2)
        backend.upload(first, "x/song.mp3")
        backend.upload(first, "x/song.mp3")
        assert backend.read("x/song.mp3") == first.read_bytes()
        backend.upload(second, "x/song.mp3")
        assert backend.read("x/song.mp3") == second.read_bytes()
        found = backend.stat("x/song.mp3")
        assert found is not None and found.size == 30_000

    def test_needs_upload(self, tmp_path: Path) -> None:
        """needs_upload() is true when absent or different, false for the same file."""
        backend = self.make_backend(tmp_path)
        source = self._source(tmp_path, size=20_000)
        assert backend.needs_upload(source, "n/song.mp3")
        backend.upload(source, "n/song.mp3")
        assert not backend.needs_upload(source, "n/song.mp3")
        other = self._source(tmp_path, "other.mp3", size=20_001, seed=3)
        assert backend.needs_upload(other, "n/song.mp3")

    def test_missing_source_is_a_permanent_error(self, tmp_path: Path) -> None:
        """Uploading a local file that does not exist fails at once, permanently."""
        backend = self.make_backend(tmp_path)
        with pytest.raises(TransferError) as info:
            backend.upload(tmp_path / "nope.mp3", "nope.mp3")
        assert info.value.permanent and info.value.code == "source_missing"

    def test_repr_and_errors_name_the_backend(self, tmp_path: Path) -> None:
        """repr() shows the name and target; errors start with '<kind> backend <name>'."""
        backend = self.make_backend(tmp_path)
        assert backend.name in repr(backend)
        with pytest.raises(StorageUnavailableError) as info:
            backend.stat("../x")
        assert str(info.value).startswith(f"{backend.kind} backend {backend.name}: ")

    def test_empty_file(self, tmp_path: Path) -> None:
        """A zero-byte file uploads, stats as size 0 and reads back empty."""
        backend = self.make_backend(tmp_path)
        empty = tmp_path / "src" / "empty.mp3"
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.write_bytes(b"")
        assert backend.upload(empty, "e/empty.mp3").size == 0
        found = backend.stat("e/empty.mp3")
        assert found is not None and found.size == 0
        assert backend.read("e/empty.mp3") == b""
