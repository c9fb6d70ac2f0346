"""A download helper process's entry point: ``python -m catalogsync.ops.helper_main``.

It reads its assignment from stdin (see ``ops/helper_process.py`` for the protocol),
builds what the stage's workers need (both repositories on one connection per thread,
the process's ``SharedResources``, the stage executor) and runs ``ops/workers.py``'s
loop for its worker names; it builds no runner. ``{"done": true}`` goes out once the
workers are finished and every file they downloaded is flushed.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import signal
import sys
import threading
from typing import IO, Any

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import Settings

from .context import JobContext, StopReason
from .repository import OpsRepository
from .shared import SharedResources
from .stages import make_executor
from .workers import StageWorkers


def _write(out: IO[str], lock: threading.Lock, message: dict[str, Any]) -> None:
    with lock:
        out.write(json.dumps(message) + "\n")
        out.flush()


class HelperContext(JobContext):
    """A stop raised by this helper's own workers is reported to the runner."""

    def __init__(self, job_id: int, out: IO[str], lock: threading.Lock) -> None:
        super().__init__(job_id)
        self._out, self._out_lock = out, lock

    def stop(self, reason: str, message: str | None = None) -> None:
        super().stop(reason, message)
        _write(self._out, self._out_lock, {"stop": str(reason), "message": message})

    def stop_from_runner(self, reason: str, message: str | None) -> None:
        super().stop(reason, message)


def run_assignment(spec: dict[str, Any], ctx: JobContext) -> None:
    """Run the assigned workers on the stage's items until none is left or ``ctx`` stops.

    The runner that started the helper planned the stage and settles it once every
    worker, here and there, is done.
    """
    settings: Settings = pickle.loads(base64.b64decode(spec["settings"]))
    repository = OpsRepository(spec["db_path"])
    catalog = CatalogRepository(spec["db_path"], share_with=repository)
    stage = repository.get_stage(int(spec["stage_id"]))
    job = repository.get_job(ctx.job_id)
    if stage is None or job is None:
        return
    shared = SharedResources.build(settings, catalog, repository)
    try:
        executor = make_executor(
            stage.stage_type,
            repository=repository,
            catalog=catalog,
            settings=settings,
            job=job,
            stage=stage,
            ctx=ctx,
            shared=shared,
        )
        try:
            StageWorkers(executor, ctx).run(list(spec["workers"]))
        finally:
            executor.close()
    finally:
        shared.close()  # every file it downloaded is fsynced and stamped


def main() -> int:
    """Run one assignment from stdin; exit 0 after ``done`` (the runner checks both)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    spec = json.loads(line)
    out_lock = threading.Lock()
    ctx = HelperContext(int(spec["job_id"]), sys.stdout, out_lock)

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

    def terminated(signum: int, _frame: object) -> None:
        # systemd's default KillMode sends SIGTERM to every process of the unit, the
        # helper included: stop like a shutdown (songs handed back, no attempt charged,
        # files flushed), not as a helper that died mid-song.
        ctx.stop_from_runner(StopReason.SHUTDOWN, f"{signal.Signals(signum).name} received")

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, terminated)
    run_assignment(spec, ctx)
    _write(sys.stdout, out_lock, {"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
