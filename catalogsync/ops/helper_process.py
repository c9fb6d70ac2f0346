"""The runner's side of a download helper process: start it, talk to it, see how it ended.

The helper's own side is ``ops/helper_main.py``. Why helpers exist:

A Python process runs Python code on one core at a time (the GIL). Downloading a small
file is mostly Python (HTTP, SQLite, paths, tags), so the workers of one process can
queue for the GIL while the machine's other cores idle. With ``[download] processes``
at its default ``"auto"`` (2 on a machine with 2 or more usable cores) or a count, a
download stage with many items runs some of its workers in helper processes: each is a fresh
interpreter (``python -m catalogsync.ops.helper_main``) with its own SQLite
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
from typing import Any

import catalogsync
from catalogsync.config import Settings

log = logging.getLogger("catalogsync.helper")

# Below this many pending items a helper's start-up (~0.25 s of imports) buys nothing.
HELPER_MIN_ITEMS = 64


# What ``processes = "auto"`` asks for on a machine with 2 or more usable cores. Measured
# on 2 cores only (docs/benchmarks.md: 2 processes beat 1 by 15-25 % on small songs), so
# auto asks for no more than that; a count in config.toml tries more on a bigger machine.
AUTO_PROCESSES = 2


def helper_process_count(
    settings: Settings | None, stage_type: str, pending: int, cpus: int | None = None
) -> int:
    """How many processes a stage's workers run in (1 = only the runner's)."""
    if (
        settings is None
        or stage_type != "download"
        or settings.download.max_bytes_per_sec  # one token bucket lives in one process
        or settings.unattended.download_limits  # and so do bandwidth windows
        or settings.unattended.platforms  # and the pacing that cooldowns share
        or pending < HELPER_MIN_ITEMS
    ):
        return 1
    wanted = settings.download.processes
    count = AUTO_PROCESSES if wanted == "auto" else int(wanted)
    if count < 2:
        return 1
    return max(1, min(count, usable_cpus() if cpus is None else cpus))


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota
    (a container started with ``--cpus=1`` sees every core of the host but gets one)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, int(quota)))
    return max(1, count)


def _own_cgroup(root: Path, proc_file: Path = Path("/proc/self/cgroup")) -> Path:
    """This process's cgroup v2 folder (``0::/system.slice/x.service``), else the root."""
    try:
        for line in proc_file.read_text().splitlines():
            if line.startswith("0::"):
                return root / line[3:].strip().lstrip("/")
    except OSError:
        pass
    return root


def _cgroup_cpu_quota(root: Path) -> float | None:
    """Cores' worth of CPU time the cgroup allows (v2 ``cpu.max``, v1 ``cfs_quota_us``);
    None when there is no quota or no cgroup file to read."""
    for folder in (_own_cgroup(root), root):  # a systemd unit's CPUQuota=, a container's root
        try:
            quota, _, period = (folder / "cpu.max").read_text().partition(" ")
            if quota.strip() == "max":
                return None
            return int(quota) / int(period)
        except (OSError, ValueError, ZeroDivisionError):
            continue
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota_us <= 0 or period_us <= 0:  # -1: no quota
        return None
    return quota_us / period_us


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
            [sys.executable, "-m", "catalogsync.ops.helper_main"],
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
