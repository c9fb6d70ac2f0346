"""Download workers in a helper process, so a stage of many small files uses two cores.

A Python process runs Python code on one core at a time (the GIL). Downloading a small
file is mostly Python (HTTP, SQLite, paths), so the workers of one process can queue
for the GIL while the machine's other cores idle. With ``[download] processes = 2`` (off
by default: on 2 cores one process measured faster) a download stage with many items
runs some of its workers in helper processes: each is a fresh
interpreter (``python -m catalogsync.ops.helper_process``) with its own SQLite
connections, HTTP connections and flusher, claiming items from the same database as the
runner's own workers. Items are claimed one at a time, so a helper that starts late or
runs slower simply takes fewer.

Protocol, one JSON object per line:

- runner -> helper (stdin): the assignment (database, pickled settings, job, stage and
  worker names), then ``{"stop": reason, "message": ...}`` when the job stops. A closed
  stdin (the runner died) stops the helper like a shutdown.
- helper -> runner (stdout): ``{"stop": reason, "message": ...}`` when one of its own
  workers stops the job (a full or missing disk), and ``{"done": true}`` once its
  workers are finished and its files flushed.

The runner treats a helper that exits without ``done`` as failed: the items it held go
back with a retry (so ``max_attempts`` bounds a helper that keeps dying) and the runner
uses no helper again until it restarts.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import catalogsync
from catalogsync.config import Settings

log = logging.getLogger("catalogsync.helper")

# Below this many pending items a helper's start-up (~0.25 s of imports) buys nothing.
HELPER_MIN_ITEMS = 64


def helper_groups(names: list[str], processes: int) -> list[list[str]]:
    """Split worker names over ``processes`` groups; group 0 stays in the runner."""
    count = max(1, min(processes, len(names)))
    return [names[index::count] for index in range(count)]


class HelperProcess:
    """The runner's handle on one helper process running some of a stage's workers."""

    def __init__(
        self,
        settings: Settings,
        job_id: int,
        stage_id: int,
        worker_names: list[str],
        on_stop: Callable[[str, str | None], None],
    ) -> None:
        self.worker_names = list(worker_names)
        self.clean = False
        self._on_stop = on_stop
        self._stop_sent: str | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._write_lock = threading.Lock()
        package_root = str(Path(catalogsync.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        # Its own session: a Ctrl-C in the runner's terminal reaches the runner, which
        # stops the helper in order (items released), instead of killing it mid-write.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=env,
            start_new_session=True,
        )
        self.pid = self._proc.pid
        self._readers = [
            threading.Thread(target=self._read_stdout, name=f"helper-{self.pid}-out", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"helper-{self.pid}-err", daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self._send(
            {
                "db_path": str(settings.db_path),
                "settings": base64.b64encode(pickle.dumps(settings)).decode("ascii"),
                "job_id": int(job_id),
                "stage_id": int(stage_id),
                "workers": self.worker_names,
            }
        )

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self._proc.stdin
        if stdin is None:
            return
        with self._write_lock:
            try:
                stdin.write(json.dumps(message) + "\n")
                stdin.flush()
            except (OSError, ValueError):
                pass  # the helper is gone; finish() reports how it ended

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self._stderr.append(line.rstrip())
                continue
            if message.get("done"):
                self.clean = True
            elif message.get("stop"):
                self._on_stop(str(message["stop"]), message.get("message"))

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            line = line.rstrip()
            if line:
                self._stderr.append(line)
                log.warning("helper %s: %s", self.pid, line)

    def running(self) -> bool:
        return self._proc.poll() is None

    def request_stop(self, reason: str, message: str | None = None) -> None:
        """Pass the job's stop on (once per reason); its workers stop at a chunk boundary."""
        if self._stop_sent == reason or not self.running():
            return
        self._stop_sent = reason
        self._send({"stop": reason, "message": message})

    def finish(self, timeout: float = 30.0) -> str | None:
        """Wait for the helper to exit; ``None`` if it ended cleanly, else what went wrong."""
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        if self._proc.stdin is not None:
            with self._write_lock:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
        code = self._proc.returncode
        if self.clean and code == 0:
            return None
        last = f": {self._stderr[-1]}" if self._stderr else ""
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"download helper process {self.pid} {how}{last}"


# -- the helper's side ---------------------------------------------------------------------


def _write(out: IO[str], lock: threading.Lock, message: dict[str, Any]) -> None:
    with lock:
        out.write(json.dumps(message) + "\n")
        out.flush()


def main() -> int:
    """Run one assignment from stdin; exit 0 after ``done`` (the runner checks both)."""
    from catalogsync.ops.repository import OpsRepository
    from catalogsync.ops.context import JobContext, StopReason
    from catalogsync.ops.runner import OpsRunner

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    spec = json.loads(line)
    settings: Settings = pickle.loads(base64.b64decode(spec["settings"]))
    out_lock = threading.Lock()

    class HelperContext(JobContext):
        """A stop raised by this helper's own workers is reported to the runner."""

        def stop(self, reason: str, message: str | None = None) -> None:
            super().stop(reason, message)
            _write(sys.stdout, out_lock, {"stop": reason, "message": message})

        def stop_from_runner(self, reason: str, message: str | None) -> None:
            super().stop(reason, message)

    ctx = HelperContext(int(spec["job_id"]))

    def listen() -> None:
        for command in sys.stdin:
            try:
                message = json.loads(command)
            except ValueError:
                continue
            if message.get("stop"):
                ctx.stop_from_runner(str(message["stop"]), message.get("message"))
        ctx.stop_from_runner(StopReason.SHUTDOWN, "the runner went away")

    threading.Thread(target=listen, name="helper-listen", daemon=True).start()
    runner = OpsRunner(OpsRepository(spec["db_path"]), settings=settings)
    try:
        runner.run_stage_workers(int(spec["stage_id"]), list(spec["workers"]), ctx)
    finally:
        runner.shared.close()  # every file it downloaded is fsynced and stamped
    _write(sys.stdout, out_lock, {"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
