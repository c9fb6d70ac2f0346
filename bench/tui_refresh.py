"""TUI refresh cost: CPU time per second of the task center, with and without its 1 Hz refresh.

A temp home is seeded through the real repositories with 50 jobs (``--jobs``): one running
download job whose 4 workers (``--workers``) hold claimed items, plus queued, paused, failed,
canceled and completed jobs. While the app runs, a separate process (the "updater", playing
the runner) writes every worker's bytes and speed every 0.5 s with ``update_worker_state``, so
each write also adds a sparkline sample, as the engine does.

The app (``CatalogsyncApp(service, embed_runner=False, refresh_interval=...)``) runs in a
child process, so ``getrusage(RUSAGE_SELF)`` (all threads: the event loop and the refresh
worker threads) counts the app and nothing else. The child highlights the running job and
presses Enter, so the detail pane with the worker sparklines is open, waits ``--warmup``
seconds, then measures CPU seconds over ``--seconds`` wall seconds (default 20). The same
run with ``refresh_interval=None`` is the baseline (the detail pane is opened the same way;
it is read once). The difference is the refresh cost, in % of one core.

Two drivers:

- ``headless`` (the spec's figure): Textual's headless driver at ``--size`` (default
  120x40). Textual still lays out and renders every widget into strips, but skips turning
  the frame into terminal escape codes.
- ``pty`` (on by default; ``--no-pty`` skips it): the real Linux driver on a pseudo-terminal
  of the same size; this process reads and drops the output. This includes the escape-code
  encoding and the writes a real terminal costs.

Time to first paint: from the child's first line (before any import) to the end of the first
frame that shows the job rows (``App._display`` returning after the task rows were applied).
The time from spawning the interpreter is printed too, and so are the import times. Every
run starts the app once; the verdict uses the median over those starts (4 by default).

Goals: refresh cost at most 3 % of one core at 120x40; first paint at most 0.5 s. The last line
printed is ``ratio refresh/no-refresh: X.XX`` (CPU per second, headless, on over off).

Run from the repository root:  /work/venv/bin/python bench/tui_refresh.py [--help]
(about 100 s with the defaults; ``--no-pty`` halves it).
"""

from __future__ import annotations

import time

# The child's clock for the first paint starts here: before anything but ``time`` is imported.
T_SCRIPT = time.monotonic()

import argparse  # noqa: E402
import compileall  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

GOAL_CORE_PCT = 3.0
GOAL_FIRST_PAINT_S = 0.5
WINDOWS = 4  # the measured run is cut in this many windows: their spread is the noise
UPDATE_EVERY_S = 0.5
MB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    """User + system CPU time of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- seeding (parent) ----------------------------------------------------------------


def _job_mix(count: int) -> dict[str, int]:
    """How many jobs of each state besides the running one (about a real day's list)."""
    rest = max(0, count - 1)
    mix = {
        "queued": round(rest * 0.20),
        "paused": max(1, round(rest * 0.06)) if rest else 0,
        "failed": round(rest * 0.08),
        "completed_with_errors": round(rest * 0.08),
        "canceled": round(rest * 0.04),
    }
    while sum(mix.values()) > rest:  # tiny --jobs: trim from the biggest group
        biggest = max(mix, key=lambda k: mix[k])
        mix[biggest] -= 1
    mix["completed"] = rest - sum(mix.values())
    return mix


def seed_home(home: Path, jobs: int, workers: int) -> dict[str, Any]:
    """Fill a fresh home through the real repositories; returns what the runs need."""
    from catalogsync import clock
    from catalogsync.ops.models import ItemStatus, JobStatus, StageStatus
    from catalogsync.providers.base import Track
    from catalogsync.service import Catalogsync

    now = time.time()

    def at(minutes_ago: float) -> None:
        clock.freeze(now - minutes_ago * 60)

    service = Catalogsync.open(home=str(home))
    try:
        ops, catalog = service.repository, service.catalog
        playlists = []
        for index, name in enumerate(
            ("Morning Commute", "Late Night Jazz", "Road Trip", "Lo-fi Study Beats"), start=1
        ):
            at(3000)
            playlist_id, _ = catalog.upsert_playlist(
                platform="manual",
                remote_id=f"pl-{index}",
                name=name,
                ref=f"/srv/playlists/pl-{index}.m3u",
                pool_kind="manual_file",
                wanted=True,
            )
            at(600 - index)
            catalog.sync_playlist_tracks(
                playlist_id,
                "manual",
                [
                    Track(
                        remote_id=f"pl{index}-{n}",
                        name=f"{name} Song {n}",
                        singers=f"Artist {n % 7 + 1}",
                        ext="mp3",
                        file_size_bytes=(4 + n % 9) * MB,
                    )
                    for n in range(1, 41)
                ],
            )
            playlists.append(playlist_id)

        mix = _job_mix(jobs)
        job_types = ("catalog_sync", "sync_only", "sync_download", "download_only")
        finished = [
            s
            for s in ("completed", "completed_with_errors", "failed", "canceled")
            for _ in range(mix[s])
        ]
        # Finished jobs, oldest first, spread over the last two days.
        for n, status in enumerate(finished):
            minutes_ago = 2880 - n * (2800 / max(1, len(finished)))
            at(minutes_ago)
            job_type = job_types[n % len(job_types)]
            job = ops.create_job(
                job_type,
                {},
                requested_by="bench",
                playlist_scope={"playlist_ids": playlists[n % 4 : n % 4 + 2]},
            )
            stage = ops.create_stage(job, "download", 1, StageStatus.COMPLETED)
            total = 5 + n % 16
            bad = {"completed": 0, "completed_with_errors": 2, "failed": total, "canceled": 0}[
                status
            ]
            ops.create_items(
                stage,
                [
                    {
                        "item_type": "song_download",
                        "item_key": f"song:{job}:{k}",
                        "status": ItemStatus.FAILED if k < bad else ItemStatus.SUCCEEDED,
                    }
                    for k in range(total)
                ],
            )
            ops.add_event(job, "started", f"job {job} started")
            at(minutes_ago - 3)
            ops.set_job_status(
                job,
                JobStatus(status),
                error="download failed: HTTP 503" if status == "failed" else None,
            )
            ops.add_event(
                job, status, f"job {job} {status}", level="error" if status == "failed" else "info"
            )
        for n in range(mix["paused"]):
            at(90 - n)
            job = ops.create_job(
                "sync_download", {}, playlist_scope={"playlist_ids": [playlists[n % 4]]}
            )
            ops.create_stage(job, "sync", 1, StageStatus.COMPLETED)
            stage = ops.create_stage(job, "download", 2, StageStatus.PENDING)
            ops.create_items(
                stage,
                [
                    {
                        "item_type": "song_download",
                        "item_key": f"song:{job}:{k}",
                        "status": ItemStatus.SUCCEEDED if k < 5 else ItemStatus.PENDING,
                    }
                    for k in range(20)
                ],
            )
            ops.set_job_status(
                job, JobStatus.PAUSED, pause_reason="disk full: 150 MB free, 200 MB reserved"
            )

        # The running download job: every song of the four playlists, 10 already done.
        at(20)
        running = ops.create_job(
            "download_only",
            {},
            status=JobStatus.RUNNING,
            playlist_scope={"playlist_ids": playlists},
        )
        stage = ops.create_stage(running, "download", 1, StageStatus.RUNNING)
        songs = catalog.songs_to_download(playlists)
        items = ops.create_items(
            stage,
            [
                {
                    "item_type": "song_download",
                    "item_key": f"song:{s['id']}",
                    "song_id": s["id"],
                    "playlist_id": s["playlist_id"],
                    "status": ItemStatus.SUCCEEDED if n < 10 else ItemStatus.PENDING,
                    "payload": {"display_text": f"{s['singers']} - {s['name']}"},
                }
                for n, s in enumerate(songs)
            ],
        )
        ops.add_event(running, "started", f"job {running} started")
        worker_names = [f"download-{k + 1}" for k in range(workers)]
        totals = []
        for k, name in enumerate(worker_names):
            index = 10 + k
            if not ops.claim_item(items[index], name):
                raise RuntimeError(f"could not claim item {items[index]} for {name}")
            totals.append(int(songs[index]["file_size_bytes"] or 8 * MB))
        # A full sparkline window (120 samples at 0.5 s) per worker before the app starts.
        for tick in range(120):
            clock.freeze(now - (120 - tick) * UPDATE_EVERY_S)
            for k, name in enumerate(worker_names):
                speed = _speed(k, tick)
                done = int(speed * tick * UPDATE_EVERY_S) % totals[k]
                ops.update_worker_state(
                    name,
                    job_id=running,
                    downloaded_bytes=done,
                    total_bytes=totals[k],
                    speed_bytes_per_sec=speed,
                    progress_percent=round(done * 100 / totals[k], 1),
                )

        for n in range(mix["queued"]):
            at(15 - n * 0.1)
            job = ops.create_job(
                job_types[n % 4],
                {},
                requested_by="bench",
                playlist_scope={"playlist_ids": [playlists[n % 4]]},
            )
            ops.ensure_job_stages(job)
        clock.freeze(None)
        total_jobs = len(ops.list_jobs())
    finally:
        clock.freeze(None)
        service.close()
    return {
        "running": running,
        "worker_names": worker_names,
        "totals": totals,
        "mix": mix,
        "total_jobs": total_jobs,
    }


def _speed(worker: int, tick: int) -> float:
    """A plausible, changing speed in bytes/s (1-4 MB/s, different for each worker)."""
    phase = (tick * (3 + worker) + worker * 17) % 40
    return (1.0 + worker * 0.7 + abs(phase - 20) / 10) * MB


# -- the updater (its own process, playing the runner) ------------------------------------


def updater_main(spec: dict[str, Any]) -> None:
    from catalogsync.service import Catalogsync

    service = Catalogsync.open(home=spec["home"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    done = [0] * len(spec["worker_names"])
    tick = 120
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            for k, name in enumerate(spec["worker_names"]):
                total = spec["totals"][k]
                speed = _speed(k, tick)
                done[k] = (done[k] + int(speed * UPDATE_EVERY_S)) % total
                service.repository.update_worker_state(
                    name,
                    job_id=spec["running"],
                    downloaded_bytes=done[k],
                    total_bytes=total,
                    speed_bytes_per_sec=speed,
                    progress_percent=round(done[k] * 100 / total, 1),
                )
            tick += 1
            next_at += UPDATE_EVERY_S
            stop.wait(max(0.0, next_at - time.monotonic()))
    finally:
        service.close()


# -- the app (child process) ---------------------------------------------------------


def child_main(spec: dict[str, Any]) -> dict[str, Any]:
    t_imports = time.monotonic()
    import asyncio

    import textual.app  # noqa: F401

    t_textual = time.monotonic()
    from catalogsync.service import Catalogsync
    from tui.app import CatalogsyncApp
    from tui.widgets.job_detail import JobDetail
    from tui.widgets.job_table import JobTable

    t_app_imports = time.monotonic()
    service = Catalogsync.open(home=spec["home"])
    t_open = time.monotonic()
    app = CatalogsyncApp(service, embed_runner=False, refresh_interval=spec["interval"])
    marks: dict[str, float] = {}
    counts = {"frames": 0, "refreshes": 0, "read_cpu": 0.0, "reads": 0}
    screen = app.task_center

    original_display = app._display

    def display(target: Any, renderable: Any) -> None:
        painting = renderable is not None and not app._batch_count
        original_display(target, renderable)
        if not painting:
            return
        counts["frames"] += 1
        if "first_frame" not in marks:
            marks["first_frame"] = time.monotonic()
        if "first_paint" not in marks and screen.rows and screen.query_one(JobTable).row_count:
            marks["first_paint"] = time.monotonic()

    app._display = display  # type: ignore[method-assign]

    original_show = screen.show_refresh

    def show_refresh(message: Any) -> None:
        counts["refreshes"] += 1
        original_show(message)

    screen.show_refresh = show_refresh  # type: ignore[method-assign]

    import tui.app

    original_read = tui.app.read_models

    def read_models(*args: Any) -> Any:
        # Runs in a worker thread: thread_time is that thread's CPU only.
        start = time.thread_time()
        try:
            return original_read(*args)
        finally:
            counts["read_cpu"] += time.thread_time() - start
            counts["reads"] += 1

    tui.app.read_models = read_models  # type: ignore[assignment]

    result: dict[str, Any] = {}
    profiler = None

    async def pilot_script(pilot: Any) -> None:
        nonlocal profiler
        try:
            deadline = time.monotonic() + 30
            while "first_paint" not in marks:
                if time.monotonic() > deadline:
                    raise RuntimeError("no frame with the job rows within 30 s")
                await asyncio.sleep(0.005)
            if spec.get("paint_only"):
                result["paint_only"] = True
                return
            table = screen.query_one(JobTable)
            if not table.highlight(str(spec["running"])):
                raise RuntimeError(f"job {spec['running']} is not in the table")
            await pilot.press("enter")
            detail = screen.query_one(JobDetail)
            while detail.job_id != spec["running"] or screen.expanded_job_id is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("the detail pane did not open")
                await asyncio.sleep(0.01)
            await asyncio.sleep(spec["warmup"])
            if spec["profile"]:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            before = dict(counts)
            cpu0, wall0 = cpu_seconds(), time.monotonic()
            windows = []
            for _ in range(WINDOWS):
                w_cpu, w_wall = cpu_seconds(), time.monotonic()
                await asyncio.sleep(spec["seconds"] / WINDOWS)
                windows.append(100.0 * (cpu_seconds() - w_cpu) / (time.monotonic() - w_wall))
            cpu1, wall1 = cpu_seconds(), time.monotonic()
            result["window_pcts"] = windows
            if profiler is not None:
                profiler.disable()
            result.update(
                cpu_s=cpu1 - cpu0,
                wall_s=wall1 - wall0,
                frames=counts["frames"] - before["frames"],
                refreshes=counts["refreshes"] - before["refreshes"],
                reads=counts["reads"] - before["reads"],
                read_cpu_s=counts["read_cpu"] - before["read_cpu"],
                size=list(app.size),
                detail_open=screen.expanded_job_id == spec["running"],
            )
        finally:
            app.exit()

    try:
        app.run(
            headless=spec["headless"],
            size=tuple(spec["size"]) if spec["headless"] else None,
            auto_pilot=pilot_script,
        )
    finally:
        service.close()
    if not result:
        raise RuntimeError("the app exited before the measurement finished")
    result.update(
        t_script=T_SCRIPT,
        import_textual_s=t_textual - t_imports,
        import_app_s=t_app_imports - t_textual,
        open_home_s=t_open - t_app_imports,
        first_frame_at=marks.get("first_frame"),
        first_paint_at=marks["first_paint"],
    )
    if profiler is not None:
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
        result["profile"] = out.getvalue()
    return result


# -- running one measurement (parent) ------------------------------------------------


def _drain(fd: int) -> None:
    """Read and drop a pty's output until it closes."""
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def run_once(
    args: argparse.Namespace,
    seed: dict[str, Any],
    home: Path,
    *,
    refresh: bool,
    pty_mode: bool,
    paint_only: bool = False,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=home.parent))
    out_file = workdir / "result.json"
    spec = {
        "home": str(home),
        "running": seed["running"],
        "interval": 1.0 if refresh else None,
        "headless": not pty_mode,
        "size": list(args.size),
        "seconds": args.seconds,
        "warmup": args.warmup,
        "profile": args.profile and refresh,
        "worker_names": seed["worker_names"],
        "totals": seed["totals"],
        "out": str(out_file),
        "paint_only": paint_only,
    }
    spec_file = workdir / "spec.json"
    spec_file.write_text(json.dumps(spec))
    script = str(Path(__file__).resolve())
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TERM="xterm-256color", COLORTERM="truecolor")
    env.pop("TEXTUAL", None)
    # As after `pipx install`: our modules load from bytecode (main() compiles them), not
    # compiled from source on every start (about 0.05 s of the first paint).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    updater = subprocess.Popen(
        [sys.executable, script, "--updater", str(spec_file)], cwd=REPO_ROOT, env=env
    )
    master = slave = None
    drain = None
    try:
        time.sleep(0.3)  # let the updater open the home and write once
        log = open(workdir / "child.log", "wb")  # noqa: SIM115
        if pty_mode:
            import fcntl
            import pty
            import struct
            import termios

            master, slave = pty.openpty()
            cols, rows = args.size
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            drain = threading.Thread(target=_drain, args=(master,), daemon=True)
            drain.start()
            streams: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave}
        else:
            streams = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log}
        spawned = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, script, "--child", str(spec_file)],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=pty_mode,
            **streams,
        )
        if slave is not None:
            os.close(slave)
            slave = None
        try:
            child.wait(timeout=90 if paint_only else args.seconds + args.warmup + 90)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise RuntimeError("the app did not finish in time") from None
        log.close()
    finally:
        updater.terminate()
        try:
            updater.wait(timeout=10)
        except subprocess.TimeoutExpired:
            updater.kill()
            updater.wait()
        if slave is not None:
            os.close(slave)
        if master is not None:
            if drain is not None:
                drain.join(timeout=5)
            os.close(master)
    if not out_file.exists():
        text = (workdir / "child.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the app child wrote no result (exit {child.returncode}):\n{text}")
    result = json.loads(out_file.read_text())
    if "error" in result:
        raise RuntimeError(f"the app child failed:\n{result['error']}")
    result["spawned"] = spawned
    if not result.get("paint_only"):
        result["cpu_per_s"] = result["cpu_s"] / result["wall_s"]
    result["first_paint_s"] = result["first_paint_at"] - result["t_script"]
    result["first_paint_spawn_s"] = result["first_paint_at"] - spawned
    result["interpreter_s"] = result["t_script"] - spawned
    shutil.rmtree(workdir, ignore_errors=True)
    return result


# -- report ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def report_pair(
    name: str, on: dict[str, Any], off: dict[str, Any]
) -> tuple[float, float, float, float]:
    """Print one driver's pair of runs; returns (refresh cost in % of one core, ratio,
    and the lowest and highest cost over the run's windows: the noise range)."""
    cost_pct = (on["cpu_per_s"] - off["cpu_per_s"]) * 100
    base = off["cpu_per_s"] * 100
    spread = [w - base for w in on.get("window_pcts") or [cost_pct]]
    ratio = on["cpu_per_s"] / off["cpu_per_s"] if off["cpu_per_s"] > 0 else float("inf")
    cols, rows = on["size"]
    print(f"\n[{name}] {cols}x{rows}, {on['wall_s']:.1f} s measured per run")
    for label, run in (("refresh 1 Hz", on), ("no refresh  ", off)):
        print(
            f"  {label}: {run['cpu_s']:.3f} CPU s in {run['wall_s']:.2f} s = "
            f"{run['cpu_per_s'] * 100:.2f} % of one core; {run['frames']} frames, "
            f"{run['refreshes']} refreshes applied, {run['reads']} reads "
            f"({run['read_cpu_s'] * 1000:.0f} ms CPU in the read thread)"
        )
    per = on["refreshes"] or 1
    print(
        f"  refresh cost: {cost_pct:.2f} % of one core "
        f"(about {(on['cpu_s'] - off['cpu_s']) * 1000 / per:.1f} ms CPU per refresh); "
        f"goal <= {GOAL_CORE_PCT:.0f} %: {verdict(cost_pct <= GOAL_CORE_PCT)}"
    )
    print(
        f"  noise: {len(spread)} windows of {on['wall_s'] / len(spread):.1f} s ranged "
        f"{min(spread):.2f}-{max(spread):.2f} % of one core"
    )
    print(f"  ratio refresh/no-refresh ({name}): {ratio:.2f}")
    for label, run in (("refresh 1 Hz", on), ("no refresh", off)):
        app_start = (
            run["first_paint_s"]
            - run["import_textual_s"]
            - run["import_app_s"]
            - run["open_home_s"]
        )
        print(
            f"  first paint ({label}): {run['first_paint_s']:.3f} s from the script's first "
            f"line, {run['first_paint_spawn_s']:.3f} s from spawn (interpreter "
            f"{run['interpreter_s']:.3f}, import textual {run['import_textual_s']:.3f}, "
            f"import tui+catalogsync {run['import_app_s']:.3f}, open home "
            f"{run['open_home_s']:.3f}, app start to paint {app_start:.3f})"
        )
    if on.get("profile"):
        print(f"\n  cProfile of the event-loop thread, refresh run ({name}):")
        print(on["profile"])
    return cost_pct, ratio, min(spread), max(spread)


def first_paint_starts(args: argparse.Namespace, seed: dict[str, Any], home: Path) -> list[float]:
    """``--starts`` app starts (headless, refresh on) that stop at the first paint."""
    runs = [
        run_once(args, seed, home, refresh=True, pty_mode=False, paint_only=True)
        for _ in range(args.starts)
    ]
    if not runs:
        return []
    cols, rows = args.size

    def spread(key: str) -> str:
        values = [run[key] for run in runs]
        return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

    for run in runs:
        run["app_start_s"] = (
            run["first_paint_s"]
            - run["import_textual_s"]
            - run["import_app_s"]
            - run["open_home_s"]
        )
    print(
        f"\n[first paint] {len(runs)} starts, headless {cols}x{rows}, stopped at the first "
        "frame with the job rows; median (min-max) in s:"
    )
    print(
        f"  from the script's first line {spread('first_paint_s')}; from spawn "
        f"{spread('first_paint_spawn_s')}"
    )
    print(
        f"  interpreter {spread('interpreter_s')}, import textual {spread('import_textual_s')}, "
        f"import tui+catalogsync {spread('import_app_s')}, open home {spread('open_home_s')}, "
        f"app start to paint {spread('app_start_s')}"
    )
    return [run["first_paint_s"] for run in runs]


def parse_size(text: str) -> tuple[int, int]:
    cols, _, rows = text.lower().partition("x")
    try:
        return int(cols), int(rows)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, not {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="measured wall seconds per run (default 20)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds between opening the detail pane and measuring (default 2)",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(120, 40),
        help="terminal size COLSxROWS (default 120x40)",
    )
    parser.add_argument("--jobs", type=int, default=50, help="jobs in the home (default 50)")
    parser.add_argument(
        "--workers", type=int, default=4, help="active download workers being updated (default 4)"
    )
    parser.add_argument(
        "--no-pty",
        action="store_true",
        help="only the headless driver (skip the pseudo-terminal runs)",
    )
    parser.add_argument(
        "--starts",
        type=int,
        default=10,
        help="extra app starts that stop at the first paint, for its median and range (default 10)",
    )
    parser.add_argument(
        "--paint-only",
        action="store_true",
        help="only the --starts first-paint runs (no refresh-cost runs)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile table of the refresh run's event-loop thread",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--updater", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child or args.updater:
        spec = json.loads(Path(args.child or args.updater).read_text())
        if args.updater:
            updater_main(spec)
            return
        try:
            result = child_main(spec)
        except BaseException:
            result = {"error": traceback.format_exc()}
        Path(spec["out"]).write_text(json.dumps(result))
        return

    compileall.compile_dir(str(REPO_ROOT / "catalogsync"), quiet=1)
    compileall.compile_dir(str(REPO_ROOT / "tui"), quiet=1)
    base = Path(tempfile.mkdtemp(prefix="catalogsync-tui-bench-"))
    try:
        home = base / "home"
        started = time.monotonic()
        seed = seed_home(home, args.jobs, args.workers)
        cols, rows = args.size
        print(
            f"tui_refresh: {seed['total_jobs']} jobs ({seed['mix']} + 1 running), "
            f"{args.workers} workers updated every {UPDATE_EVERY_S} s by a separate process; "
            f"{cols}x{rows}; {args.seconds:g} s per run after {args.warmup:g} s warm-up "
            f"(seeded in {time.monotonic() - started:.1f} s)"
        )
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {date.today()}")
        modes = (
            []
            if args.paint_only
            else ([("headless", False)] + ([] if args.no_pty else [("pty", True)]))
        )
        results: dict[str, tuple[float, float, float, float]] = {}
        paints: list[float] = []
        for name, pty_mode in modes:
            off = run_once(args, seed, home, refresh=False, pty_mode=pty_mode)
            on = run_once(args, seed, home, refresh=True, pty_mode=pty_mode)
            for run in (on, off):
                if not run["detail_open"]:
                    print(f"  warning: the detail pane was not open at the end ({name})")
                paints.append(run["first_paint_s"])
            results[name] = report_pair(name, on, off)
        paints += first_paint_starts(args, seed, home)
        print(f"\nsummary ({cols}x{rows}; the goals are set for 120x40):")
        for name, (cost_pct, _, low, high) in results.items():
            print(
                f"  refresh cost, {name}: {cost_pct:.2f} % of one core (windows "
                f"{low:.2f}-{high:.2f} %); goal <= {GOAL_CORE_PCT:.0f} %: "
                f"{verdict(cost_pct <= GOAL_CORE_PCT)}"
            )
        paint = statistics.median(paints)
        print(
            f"  first paint: median {paint:.3f} s of {len(paints)} starts (min "
            f"{min(paints):.3f}, max {max(paints):.3f}); goal <= {GOAL_FIRST_PAINT_S} s: "
            f"{verdict(paint <= GOAL_FIRST_PAINT_S)}"
        )
        print(f"total {time.monotonic() - started:.0f} s")
        if "headless" in results:
            print(f"ratio refresh/no-refresh: {results['headless'][1]:.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
