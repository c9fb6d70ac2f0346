"""Progress for downloads we do not drive: watch a file grow on disk."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from catalogsync.transfer.meter import ThroughputMeter

GrowthCallback = Callable[[int, int | None, float | None], None]
"""Called with (bytes on disk, expected total or None, bytes/s or None)."""


class FileGrowthMonitor:
    """Context manager: a daemon thread stats ``path`` every ``interval`` s and reports growth.

    While the final file does not exist yet it also looks at ``path.part`` and
    at any file in the same folder named ``<stem>`` or ``<stem>.*`` (an opaque
    downloader's temporary file) and uses the largest one.
    """

    def __init__(
        self,
        path: Path,
        expected_bytes: int | None,
        on_update: GrowthCallback,
        interval: float = 0.5,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.expected_bytes = expected_bytes
        self.on_update = on_update
        self.interval = max(float(interval), 0.01)
        self.meter = ThroughputMeter(clock=clock)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_size: int | None = None
        self._last_poll: float | None = None
        self.last_bytes = 0
        self.error: BaseException | None = None

    def __enter__(self) -> FileGrowthMonitor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the watching thread (``with`` does this for you)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"growth-monitor:{self.path.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread after one last sample and wait for it."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout if timeout is not None else self.interval + 5.0)

    def current_size(self) -> int:
        """Bytes on disk now: the final file, else its ``.part`` or a same-stem temporary."""
        size = _regular_size(self.path)
        if size is not None:
            return size
        best = _regular_size(self.path.with_name(self.path.name + ".part")) or 0
        stem = self.path.stem
        try:
            with os.scandir(self.path.parent) as entries:
                for entry in entries:
                    if entry.name != stem and not entry.name.startswith(stem + "."):
                        continue
                    try:
                        if entry.is_file():
                            best = max(best, entry.stat().st_size)
                    except OSError:
                        continue
        except OSError:
            pass
        return best

    def poll(self) -> None:
        """Take one sample and call ``on_update`` (the thread calls this every interval)."""
        now = self._clock()
        size = self.current_size()
        if self._last_size is not None and size > self._last_size:
            if self.meter.total_bytes == 0 and self._last_poll is not None:
                self.meter.start(at=self._last_poll)
            self.meter.add(size - self._last_size)
        elif self._last_size is None and size > 0:
            self.meter.start(at=now)
        self._last_size = size
        self._last_poll = now
        self.last_bytes = size
        self.on_update(size, self.expected_bytes, self.meter.rate())

    def _run(self) -> None:
        try:
            self.poll()
            while not self._stop.wait(self.interval):
                self.poll()
            self.poll()
        except BaseException as exc:  # reported through .error, never raised in the thread
            self.error = exc


def _regular_size(path: Path) -> int | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None
