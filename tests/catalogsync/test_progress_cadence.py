"""WorkerProgress writes a worker's row about twice a second, and at every 0.5 s burst."""

from __future__ import annotations

import random

import pytest

from catalogsync.ops.progress import WorkerProgress


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _progress(clock: _Clock) -> tuple[WorkerProgress, list[float]]:
    progress = WorkerProgress(None, "download-1", 1, clock=clock)  # type: ignore[arg-type]
    writes: list[float] = []
    progress._write = lambda *a, **k: writes.append(clock.now)  # type: ignore[method-assign]
    return progress, writes


@pytest.mark.parametrize("jitter", [0.005, 0.02, 0.1])
def test_every_burst_of_a_half_second_server_is_shown_even_across_slot_boundaries(
    jitter: float,
) -> None:
    """nginx with sendfile_max_chunk sends a burst every 0.5 s; its phase against the
    0.5 s slots jitters. Each burst must move the row: a skipped one is 1 s standing still."""
    rng = random.Random(7)
    clock = _Clock()
    progress, writes = _progress(clock)
    done = 0
    for burst in range(400):
        # Bursts land on the slot boundary give or take `jitter`: the aliasing worst case.
        clock.now = 1000.0 + burst * 0.5 + rng.uniform(-jitter, jitter)
        done += 1 << 20
        progress.on_bytes(done, None)
    gaps = [b - a for a, b in zip(writes, writes[1:], strict=False)]
    assert len(writes) == 400
    assert max(gaps) <= 0.5 + 2 * jitter + 1e-9


def test_a_steady_flow_is_written_about_twice_a_second_not_per_chunk() -> None:
    clock = _Clock()
    progress, writes = _progress(clock)
    for tick in range(10_000):  # 100 s of 64 KiB chunks every 10 ms
        clock.now = 1000.0 + tick * 0.01
        progress.on_bytes((tick + 1) * 65536, None)
    per_second = len(writes) / 100.0
    assert 1.9 <= per_second <= 2.3, per_second
