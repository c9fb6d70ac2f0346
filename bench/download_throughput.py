"""Download throughput and speed accuracy: real catalogsync jobs vs curl and aria2c.

A local HTTP server (a separate process on 127.0.0.1: ThreadingHTTPServer, ``sendfile``,
``Range`` support, optional per-request pacing) serves generated files. In one run:

(a) one 256 MiB file through a real ``sync_download`` job (service API, temp home, JSON
    manifest -> ``add_playlists`` -> ``submit_job`` -> runner until idle) vs ``curl -o``;
(b) 500 files of 256 KiB through one job with 4 download workers vs ``aria2c -j4 -i list``;
(c) speed accuracy: one file served at 2 MiB/s; the speed the engine recorded
    (``worker_speed_samples``) during the transfer vs bytes/elapsed measured by the server;
(t) tagging cost: ``write_tags`` (title, artist, album, track, date, catalogsync_source)
    on a fresh copy of a 256 KiB untagged MP3, in-process, median of ``--tag-count`` runs.
    Jobs (a) and (b) run with the default ``[library] write_tags = true``.
(d) the same against nginx (Debian's nginx-light) with ``limit_rate``, judged by nginx's
    own access log ($bytes_sent / $request_time).

A job's time runs from ``submit_job`` to the runner's ``job_finished`` event, so it includes
planning (the sync stage and download planning), every DB write and the SHA-256 / size
verification, but not interpreter start-up. The engine fsyncs in a background flusher, so
the time until the runner has stopped and every file is fsynced and stamped ``flushed_at``
is printed too (beside ``curl -o`` + fsync). A peer's time is the wall time of its
process. MB = 2**20 bytes (as the engine's speed text). Goals: catalogsync/curl >= 0.9,
catalogsync/aria2c >= 1.0, speed error within 5 %.

Run from the repository root:  /work/venv/bin/python bench/download_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MIB = 1024 * 1024
KIB = 1024
GOAL_CURL = 0.9
GOAL_ARIA2C = 1.0
GOAL_ERROR_PCT = 5.0
THROTTLE_CHUNK = 16 * KIB


# -- the file server (runs in its own process: python download_throughput.py --serve DIR) --


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.transfers: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.transfers.append(entry)

    def take(self, reset: bool) -> list[dict[str, Any]]:
        with self.lock:
            out = list(self.transfers)
            if reset:
                self.transfers.clear()
        return out


class FileHandler(BaseHTTPRequestHandler):
    """GET/HEAD of files under the root, with single ranges and ``?rate=BYTES_PER_SEC``."""

    protocol_version = "HTTP/1.1"
    server_version = "bench-files/1"
    root: Path = Path(".")
    stats = _Stats()

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve(head=False)

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, *, head: bool) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/__stats":
            data = self.stats.take(reset="reset" in query)
            self._reply(200, json.dumps(data).encode(), "application/json")
            return
        target = (self.root / unquote(url.path).lstrip("/")).resolve()
        if self.root not in target.parents or not target.is_file():
            self._reply(404, b"not found\n")
            return
        size = target.stat().st_size
        start, end = 0, size - 1
        status = 200
        header = self.headers.get("Range")
        if header:
            parsed = _parse_range(header, size)
            if parsed is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = parsed
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return
        rate = float(query.get("rate", ["0"])[0] or 0)
        sent = 0
        began = time.time()
        try:
            with open(target, "rb") as fh:
                if rate <= 0:
                    sent = self.connection.sendfile(fh, start, length)
                else:
                    clock0 = time.monotonic()
                    while sent < length:
                        due = clock0 + sent / rate
                        wait = due - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        count = min(THROTTLE_CHUNK, length - sent)
                        sent += self.connection.sendfile(fh, start + sent, count)
        except OSError:
            self.close_connection = True
        finally:
            ended = time.time()
            self.stats.add(
                {"path": url.path, "bytes": sent, "start": began, "end": ended, "rate": rate}
            )


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if not first:  # suffix range: the last N bytes
            n = int(last)
            if n <= 0:
                return None
            return max(size - n, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def serve(root: str) -> None:
    FileHandler.root = Path(root).resolve()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), FileHandler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.5)


class ServerProcess:
    """The file server in a child process, so it never competes for the engine's GIL."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", str(root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("port "):
            self.proc.kill()
            raise SystemExit(f"file server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, name: str, rate: int | None = None) -> str:
        return f"{self.base}/{name}" + (f"?rate={rate}" if rate else "")

    def stats(self, reset: bool = True) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.base + "/__stats" + ("?reset=1" if reset else "")) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- test files ---------------------------------------------------------------------------


_FRAME_HEADER = b"\xff\xfb\x90\x64"  # MPEG-1 Layer III, 128 kb/s, 44.1 kHz
_FRAME_BYTES = 417


def make_file(path: Path, size: int) -> str:
    """MP3 frames with random payload, ``size`` bytes (kept between runs); its SHA-256.

    The engine records only audio, so the files are MPEG streams as far as mutagen is
    concerned; their payload is random, so nothing compresses or dedupes them.
    """
    sidecar = path.with_name(path.name + ".mp3frames.sha256")
    if path.exists() and path.stat().st_size == size and sidecar.exists():
        return sidecar.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    tmp = path.with_name(path.name + ".tmp")
    frames_per_block = (8 * MIB) // _FRAME_BYTES
    with open(tmp, "wb") as fh:
        left = size
        while left:
            payload = os.urandom(frames_per_block * (_FRAME_BYTES - 4))
            step = _FRAME_BYTES - 4
            block = b"".join(
                _FRAME_HEADER + payload[i * step : (i + 1) * step] for i in range(frames_per_block)
            )[:left]
            fh.write(block)
            hasher.update(block)
            left -= len(block)
    os.replace(tmp, path)
    sidecar.write_text(hasher.hexdigest())
    return hasher.hexdigest()


# -- catalogsync side -----------------------------------------------------------------------


def run_engine_job(
    work: Path, tracks: list[dict[str, Any]], workers: int, label: str, extra_config: str = ""
) -> dict[str, Any]:
    """One sync_download job over a manifest of ``tracks``; returns timing and the home."""
    from catalogsync.ops.models import JobStatus
    from catalogsync.service import Catalogsync

    home = work / f"home-{label}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        f"[download]\nworkers = {workers}\nreserve_mb = 0\n{extra_config}", encoding="utf-8"
    )
    manifest = home / "bench.json"
    manifest.write_text(json.dumps({"name": f"bench {label}", "tracks": tracks}), encoding="utf-8")
    svc = Catalogsync.open(home=str(home))
    finished: dict[str, Any] = {}
    try:
        svc.add_playlists([str(manifest)])

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "job_finished":
                finished["at"] = time.perf_counter()
                finished["status"] = data.get("status")

        runner = svc.make_runner(on_event=on_event)
        settle_disk()
        usage0 = _engine_usage()
        started = time.perf_counter()
        job_id = int(svc.submit_job("sync_download", requested_by="bench").id)
        runner.run_forever(until_idle=True, lease=svc.lease)
        # run_forever ends with the runner's stop, which drains the flusher: from here
        # every file is fsynced and stamped flushed_at.
        durable = time.perf_counter() - started
        if "at" not in finished:
            raise SystemExit(f"{label}: the job did not finish")
        elapsed = finished["at"] - started
        cpu = _engine_usage() - usage0
        job = svc.repository.require_job(job_id)
        stages = {s.stage_type: s for s in svc.repository.list_job_stages(job_id)}
        download = stages["download"]
        if job.status != JobStatus.COMPLETED or download.success_items != len(tracks):
            raise SystemExit(
                f"{label}: job {job_id} ended {job.status.value} ({job.error}); "
                f"download stage {download}"
            )
        files = svc.catalog.list_library_files(int(svc.catalog.default_backend()["id"]))
        on_disk = sum(
            (svc.settings.library_root / f["relative_path"]).stat().st_size for f in files
        )
        expected = sum(int(t["size"]) for t in tracks)
        # Tags (on by default) only add bytes to what the server sent.
        if len(files) != len(tracks) or on_disk < expected:
            raise SystemExit(f"{label}: library holds {len(files)} files, {on_disk} bytes")
        unflushed = [f for f in files if not f.get("flushed_at")]
        if unflushed:
            raise SystemExit(f"{label}: {len(unflushed)} files never flushed to disk")
        return {
            "elapsed": elapsed,
            "durable": durable,
            "cpu": cpu,
            "job_id": job_id,
            "db": svc.settings.db_path,
            "home": home,
        }
    finally:
        if svc.lease is not None:
            svc.lease.release()
        svc.runner = None
        svc.lease = None
        svc.close()


def _engine_usage() -> float:
    """CPU seconds of this process and of its reaped children: the engine's helper
    processes (the file server is reaped only at the end, and peers run outside the
    engine's runs)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def engine_samples(db_path: Path, job_id: int) -> list[tuple[float, float]]:
    """(epoch, bytes/s) of every speed the job's download workers recorded."""
    conn = sqlite3.connect(str(db_path))
    try:
        rows = conn.execute(
            "SELECT s.at, s.speed_bytes_per_sec FROM worker_speed_samples s "
            "JOIN job_workers w ON w.id = s.worker_id "
            "WHERE w.job_run_id = ? AND w.worker_name LIKE 'download-%' ORDER BY s.id",
            (job_id,),
        ).fetchall()
    finally:
        conn.close()
    return [(float(at), float(speed)) for at, speed in rows if speed]


def settle_disk() -> None:
    """Flush earlier runs' dirty pages (untimed), so no run pays for the one before it."""
    os.sync()


# -- peers ----------------------------------------------------------------------------------


def run_curl(url: str, out: Path) -> float:
    out.unlink(missing_ok=True)
    settle_disk()
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "-f", "-o", str(out), url], check=True)
    return time.perf_counter() - started


def fsync_path(path: Path) -> float:
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def run_aria2c(urls: list[str], folder: Path, jobs: int) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    listing = folder.parent / "aria2c-input.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    settle_disk()
    started = time.perf_counter()
    subprocess.run(
        [
            "aria2c",
            f"-j{jobs}",
            "-i",
            str(listing),
            "-d",
            str(folder),
            "-q",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
        ],
        check=True,
    )
    elapsed = time.perf_counter() - started
    got = len([p for p in folder.iterdir() if p.is_file()])
    if got != len(urls):
        raise SystemExit(f"aria2c left {got} of {len(urls)} files")
    return elapsed


# -- scenarios ------------------------------------------------------------------------------


def runs(times: list[float]) -> str:
    """``median of 5: 0.31, 0.33, ... s``: the timed runs behind a median."""
    return f"median of {len(times)}: " + ", ".join(f"{t:.2f}" for t in times) + " s"


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / MIB / seconds


def scenario_big(args, server: ServerProcess, files: Path, work: Path) -> float | None:
    size = args.big_mib * MIB
    name = f"big-{size}.mp3"
    digest = make_file(files / name, size)
    track = {
        "url": server.url(name),
        "title": "Big File",
        "artist": "Bench",
        "size": size,
        "sha256": digest,
    }
    have_curl = shutil.which("curl") is not None
    engine_times, durable_times, curl_times, sync_times, cpu = [], [], [], [], []
    for n in range(-args.warmup, args.repeat):
        result = run_engine_job(work, [track], args.workers, f"big{n}", args.library_config)
        if n < 0:  # untimed: lets the disk settle after earlier runs' deletes
            shutil.rmtree(result["home"], ignore_errors=True)
            if have_curl:
                run_curl(track["url"], work / "curl-big.mp3")
                (work / "curl-big.mp3").unlink()
            continue
        engine_times.append(result["elapsed"])
        durable_times.append(result["durable"])
        cpu.append(result["cpu"] / result["elapsed"] * 100)
        shutil.rmtree(result["home"], ignore_errors=True)
        if have_curl:
            out = work / "curl-big.mp3"
            curl_times.append(run_curl(track["url"], out))
            sync_times.append(curl_times[-1] + fsync_path(out))
            out.unlink()
    engine = mbps(size, statistics.median(engine_times))
    print(
        f"(a) {args.big_mib} MiB file, catalogsync sync_download job: "
        f"{engine:.1f} MB/s ({runs(engine_times)}; engine CPU "
        f"{statistics.median(cpu):.0f} % of one core, helpers included)"
    )
    print(
        f"(a) the same runs until the file was fsynced and stamped synced (runner stopped): "
        f"{mbps(size, statistics.median(durable_times)):.1f} MB/s ({runs(durable_times)})"
    )
    if not have_curl:
        print("(a) curl: skipped (curl is not installed)")
        return None
    curl = mbps(size, statistics.median(curl_times))
    print(f"(a) curl -o: {curl:.1f} MB/s ({runs(curl_times)})")
    synced = mbps(size, statistics.median(sync_times))
    durable = mbps(size, statistics.median(durable_times))
    print(
        f"(a) curl -o then fsync: {synced:.1f} MB/s -> catalogsync until synced/(curl+fsync) "
        f"{durable / synced:.2f} (informational)"
    )
    return engine / curl


def scenario_small(args, server: ServerProcess, files: Path, work: Path) -> float | None:
    size = args.small_kib * KIB
    names = [f"small-{size}/track-{n:04d}.mp3" for n in range(1, args.small_count + 1)]
    tracks = []
    for n, name in enumerate(names, start=1):
        digest = make_file(files / name, size)
        tracks.append(
            {
                "url": server.url(name),
                "title": f"Track {n:04d}",
                "artist": "Bench",
                "size": size,
                "sha256": digest,
            }
        )
    total = size * len(names)
    have_aria = shutil.which("aria2c") is not None
    engine_times, durable_times, aria_times, cpu = [], [], [], []
    for n in range(-args.warmup, args.repeat):
        result = run_engine_job(work, tracks, args.workers, f"small{n}", args.library_config)
        if n < 0:  # untimed, as in (a)
            shutil.rmtree(result["home"], ignore_errors=True)
            if have_aria:
                run_aria2c([t["url"] for t in tracks], work / "aria2c-out", args.workers)
                shutil.rmtree(work / "aria2c-out", ignore_errors=True)
            continue
        engine_times.append(result["elapsed"])
        durable_times.append(result["durable"])
        cpu.append(result["cpu"] / result["elapsed"] * 100)
        shutil.rmtree(result["home"], ignore_errors=True)
        if have_aria:
            aria_times.append(
                run_aria2c([t["url"] for t in tracks], work / "aria2c-out", args.workers)
            )
            shutil.rmtree(work / "aria2c-out", ignore_errors=True)
    engine = mbps(total, statistics.median(engine_times))
    print(
        f"(b) {len(names)} x {args.small_kib} KiB, catalogsync job with {args.workers} "
        f"workers: {engine:.1f} MB/s, {len(names) / statistics.median(engine_times):.0f} "
        f"files/s ({runs(engine_times)}; engine CPU "
        f"{statistics.median(cpu):.0f} % of one core, helpers included)"
    )
    print(
        f"(b) the same runs until every file was fsynced and stamped synced: "
        f"{mbps(total, statistics.median(durable_times)):.1f} MB/s ({runs(durable_times)})"
    )
    if not have_aria:
        print("(b) aria2c: skipped (aria2c is not installed)")
        return None
    aria = mbps(total, statistics.median(aria_times))
    print(
        f"(b) aria2c -j{args.workers} -i list: {aria:.1f} MB/s, "
        f"{len(names) / statistics.median(aria_times):.0f} files/s ({runs(aria_times)})"
    )
    return engine / aria


def scenario_accuracy(args, server: ServerProcess, files: Path, work: Path) -> float:
    size = args.throttle_file_mib * MIB
    rate = int(args.throttle_mib * MIB)
    name = f"throttle-{size}.mp3"
    digest = make_file(files / name, size)
    track = {
        "url": server.url(name, rate=rate),
        "title": "Throttled",
        "artist": "Bench",
        "size": size,
        "sha256": digest,
    }
    server.stats(reset=True)
    result = run_engine_job(work, [track], 1, "throttle")
    transfers = [t for t in server.stats(reset=True) if t["path"] == "/" + name]
    if len(transfers) != 1 or transfers[0]["bytes"] != size:
        raise SystemExit(f"(c) expected one full transfer, server saw {transfers}")
    transfer = transfers[0]
    server_rate = transfer["bytes"] / (transfer["end"] - transfer["start"])
    samples = engine_samples(result["db"], result["job_id"])
    shutil.rmtree(result["home"], ignore_errors=True)
    # The engine's meter averages a 3 s window: judge the samples taken once a full window
    # of this transfer was behind it, up to the end of the transfer.
    lo = transfer["start"] + args.warmup_s
    steady = [speed for at, speed in samples if lo <= at <= transfer["end"]]
    if not steady:
        raise SystemExit(f"(c) no engine speed samples in the steady window ({samples})")
    mean = statistics.fmean(steady)
    error = abs(mean - server_rate) / server_rate * 100
    worst = max(abs(s - server_rate) / server_rate * 100 for s in steady)
    print(
        f"(c) throttled at {args.throttle_mib:g} MiB/s, {args.throttle_file_mib} MiB: server "
        f"measured {server_rate / MIB:.3f} MB/s over {transfer['end'] - transfer['start']:.1f} "
        f"s; engine reported {mean / MIB:.3f} MB/s (mean of {len(steady)} samples after "
        f"{args.warmup_s:g} s; median {statistics.median(steady) / MIB:.3f}, worst sample "
        f"off by {worst:.1f} %)"
    )
    return error


def scenario_nginx(args, files: Path, work: Path) -> float | None:
    """(d) the same accuracy check against nginx's per-connection ``limit_rate``.

    nginx sends one second's worth up front (bytes by time t = rate x (t + 1)), so its
    own log is read as the difference of two requests of one file, a short one and the
    engine's long one: (S2 - S1) / (T2 - T1). The single-request figure is printed too.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.nginx_rate import Nginx, nginx_binary

    if nginx_binary() is None:
        print("(d) nginx: not installed (apt-get install nginx-light); skipped")
        return None
    size = args.throttle_file_mib * MIB
    rate = int(args.throttle_mib * MIB)
    short_name, name = f"nginx-short-{size}.mp3", f"nginx-{size}.mp3"
    digest = make_file(files / name, size)
    make_file(files / short_name, max(size // 6, MIB))
    server = Nginx(files, work / "nginx", rate=rate)
    try:
        with urllib.request.urlopen(server.url("limited", short_name), timeout=60) as response:
            response.read()
        short = server.wait_for_log(f"/limited/{short_name}")
        track = {
            "url": server.url("limited", name),
            "title": "nginx",
            "artist": "Bench",
            "size": size,
            "sha256": digest,
        }
        result = run_engine_job(work, [track], 1, "nginx")
        long = server.wait_for_log(f"/limited/{name}")
    finally:
        server.close()
    samples = engine_samples(result["db"], result["job_id"])
    shutil.rmtree(result["home"], ignore_errors=True)
    truth = (long.bytes_sent - short.bytes_sent) / (long.request_time - short.request_time)
    lo = long.ended_at - long.request_time + args.warmup_s
    steady = [speed for at, speed in samples if lo <= at <= long.ended_at]
    if not steady:
        raise SystemExit(f"(d) no engine speed samples in the steady window ({samples})")
    mean = statistics.fmean(steady)
    error = abs(mean - truth) / truth * 100
    print(
        f"(d) nginx limit_rate {args.throttle_mib:g} MiB/s, {args.throttle_file_mib} MiB: "
        f"server log {truth / MIB:.3f} MB/s (two requests; one request alone says "
        f"{long.rate / MIB:.3f}); engine reported {mean / MIB:.3f} MB/s (mean of "
        f"{len(steady)} samples after {args.warmup_s:g} s), error {error:.2f} %"
    )
    return error


# -- main -----------------------------------------------------------------------------------


def scenario_tags(args, files: Path, work: Path) -> float:
    """(t) median seconds of one ``write_tags`` on a 256 KiB MP3 (a fresh copy each time)."""
    from catalogsync.config import LibrarySettings
    from catalogsync.library.tags import write_tags

    source = files / "tags-256k.mp3"
    make_file(source, 256 * 1024)
    song = {
        "platform": "manifest",
        "remote_id": "bench",
        "name": "Track 0001",
        "singers": "Bench",
        "album": "Bench Album",
        "track_number": 1,
        "year": 2026,
    }
    library = LibrarySettings(cover_art=False)
    times = []
    for n in range(args.tag_count):
        part = work / f"tag-{n}.part"
        shutil.copyfile(source, part)
        started = time.perf_counter()
        outcome = write_tags(part, song, "mp3", library)
        times.append(time.perf_counter() - started)
        if not outcome.tagged:
            raise SystemExit(f"(t) write_tags did not tag: {outcome.note}")
        part.unlink()
    median = statistics.median(times)
    print(
        f"(t) tagging: write_tags on a 256 KiB MP3, median of {len(times)}: "
        f"{median * 1000:.2f} ms per song ({1 / median:.0f} songs/s per worker)"
    )
    return median


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes: 32 MiB, 100 x 256 KiB, 12 MiB throttled, 1 repeat",
    )
    parser.add_argument("--big-mib", type=int, default=256, help="size of file (a), MiB (256)")
    parser.add_argument("--small-count", type=int, default=500, help="files in (b) (500)")
    parser.add_argument("--small-kib", type=int, default=256, help="size of each (b) file (256)")
    parser.add_argument("--workers", type=int, default=4, help="download workers / aria2c -j (4)")
    parser.add_argument(
        "--throttle-mib", type=float, default=2.0, help="server cap for (c), MiB/s (2)"
    )
    parser.add_argument(
        "--throttle-file-mib", type=int, default=32, help="size of the throttled file, MiB (32)"
    )
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=3.5,
        help="seconds of (c) before samples count (the meter window is 3 s)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of (a) and (b); median (5)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed runs of (a) and (b), each tool, before the timed ones (1)",
    )
    parser.add_argument(
        "--cache-dir",
        default=str(Path(tempfile.gettempdir()) / "catalogsync-bench"),
        help="where generated files are kept between runs",
    )
    parser.add_argument(
        "--no-tags",
        action="store_true",
        help="run jobs (a) and (b) with [library] write_tags = false",
    )
    parser.add_argument(
        "--processes",
        default=None,
        help='[download] processes for jobs (a) and (b): a count or "auto" (default: the '
        "engine's, auto)",
    )
    parser.add_argument(
        "--tag-count", type=int, default=200, help="write_tags runs in (t); median (200)"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["a", "b", "c", "d", "t"],
        help="skip a scenario (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.processes is None:
        args.library_config = ""
    elif args.processes == "auto":
        args.library_config = 'processes = "auto"\n'
    else:
        args.library_config = f"processes = {int(args.processes)}\n"
    if args.no_tags:
        args.library_config += "[library]\nwrite_tags = false\n"
    if args.quick:
        args.big_mib, args.small_count, args.throttle_file_mib, args.repeat = 32, 100, 12, 1
        args.warmup, args.tag_count = 0, 50
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    print(
        f"download_throughput: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; MB = 2**20 bytes"
    )
    for tool in ("curl", "aria2c"):
        path = shutil.which(tool)
        if path:
            version = subprocess.run([tool, "--version"], capture_output=True, text=True)
            print(f"peer {tool}: {version.stdout.splitlines()[0] if version.stdout else path}")
        else:
            print(f"peer {tool}: not installed; its comparison is skipped")
    files = Path(args.cache_dir) / "files"
    files.mkdir(parents=True, exist_ok=True)
    # Work files live next to the served ones: one file system for every tool.
    work = Path(tempfile.mkdtemp(prefix="cs-bench-dl-", dir=args.cache_dir))
    server = ServerProcess(files)
    ratio_curl = ratio_aria = error = tag_seconds = nginx_error = None
    try:
        if "a" not in args.skip:
            ratio_curl = scenario_big(args, server, files, work)
        if "b" not in args.skip:
            ratio_aria = scenario_small(args, server, files, work)
        if "c" not in args.skip:
            error = scenario_accuracy(args, server, files, work)
        if "t" not in args.skip:
            tag_seconds = scenario_tags(args, files, work)
        if "d" not in args.skip:
            nginx_error = scenario_nginx(args, files, work)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)

    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    if "a" not in args.skip:
        if ratio_curl is None:
            print("ratio catalogsync/curl: skipped (curl is not installed)")
        else:
            print(f"goal catalogsync/curl >= {GOAL_CURL}: {verdict(ratio_curl >= GOAL_CURL)}")
            print(f"ratio catalogsync/curl: {ratio_curl:.2f}")
    if "b" not in args.skip:
        if ratio_aria is None:
            print("ratio catalogsync/aria2c: skipped (aria2c is not installed)")
        else:
            print(f"goal catalogsync/aria2c >= {GOAL_ARIA2C}: {verdict(ratio_aria >= GOAL_ARIA2C)}")
            print(f"ratio catalogsync/aria2c: {ratio_aria:.2f}")
    if error is not None:
        print(f"goal speed error <= {GOAL_ERROR_PCT:g} %: {verdict(error <= GOAL_ERROR_PCT)}")
        print(f"speed accuracy error: {error:.2f} %")
    if tag_seconds is not None:
        print(f"tagging cost per song: {tag_seconds * 1000:.2f} ms (256 KiB MP3, median)")
    if nginx_error is not None:
        print(
            f"goal speed error vs nginx <= {GOAL_ERROR_PCT:g} %: "
            f"{verdict(nginx_error <= GOAL_ERROR_PCT)}"
        )
        print(f"speed accuracy error vs nginx: {nginx_error:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
