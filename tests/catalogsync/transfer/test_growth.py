"""FileGrowthMonitor watching a file another thread writes."""

from __future__ import annotations

import threading
from pathlib import Path

from catalogsync.transfer import FileGrowthMonitor


def _writer(
    path: Path, chunks: int, size: int, pause: threading.Event, done: threading.Event
) -> None:
    with open(path, "ab") as fh:
        for _ in range(chunks):
            fh.write(b"\x00" * size)
            fh.flush()
            pause.wait(0.03)
    done.set()


def test_monitor_reports_growth_and_rate(tmp_path: Path) -> None:
    final = tmp_path / "song.mp3"
    part = tmp_path / "song.mp3.part"
    part.touch()
    updates: list[tuple[int, int | None, float | None]] = []
    lock = threading.Lock()

    def on_update(size: int, expected: int | None, rate: float | None) -> None:
        with lock:
            updates.append((size, expected, rate))

    never = threading.Event()
    done = threading.Event()
    total = 40 * 32 * 1024
    with FileGrowthMonitor(final, total, on_update, interval=0.05):
        writer = threading.Thread(target=_writer, args=(part, 40, 32 * 1024, never, done))
        writer.start()
        writer.join(20)
        part.rename(final)
        assert done.is_set()
    with lock:
        sizes = [u[0] for u in updates]
        rates = [u[2] for u in updates]
    assert sizes == sorted(sizes)
    assert len(set(sizes)) > 3
    assert sizes[-1] == total
    assert all(u[1] == total for u in updates)
    assert rates[0] is None
    assert any(r is not None and r > 0 for r in rates)


def test_monitor_sees_same_stem_temporaries(tmp_path: Path) -> None:
    final = tmp_path / "song.mp3"
    (tmp_path / "song.m4a.download").write_bytes(b"x" * 1000)
    (tmp_path / "song (2).mp3").write_bytes(b"x" * 5000)  # another song: ignored
    monitor = FileGrowthMonitor(final, None, lambda *a: None)
    assert monitor.current_size() == 1000
    final.write_bytes(b"y" * 10)
    assert monitor.current_size() == 10


def test_monitor_stops_cleanly_without_file(tmp_path: Path) -> None:
    seen: list[int] = []
    monitor = FileGrowthMonitor(
        tmp_path / "nothing.mp3", None, lambda s, e, r: seen.append(s), interval=0.02
    )
    with monitor:
        pass
    assert monitor._thread is None
    assert monitor.error is None
    assert seen and set(seen) == {0}
