"""Command-line latency, as a user or a script meets it: whole `catalogsync` processes.

In one run:

(a) `catalogsync status`, `catalogsync jobs list` and `catalogsync jobs submit
    sync_download --wait` of a job with nothing to do: the median wall time of 10
    processes each (goals: status <= 0.15 s, the empty submit --wait <= 0.30 s);
(b) 300 songs of 256 KiB (MP3 frames, as tests/support/audio.py makes them: the engine
    records only audio) through one whole-process `catalogsync jobs submit sync_download
    --wait` with 4 download workers, against `aria2c -j4 -i list` of the same URLs in
    the same run; the ratio of their wall times (goal >= 1.0: catalogsync as fast).

Every process starts from the installed console script with compiled bytecode, the way
a pipx install runs (PYTHONDONTWRITEBYTECODE is cleared, and the package is compiled
once before timing). The files come from bench/download_throughput.py's file server in
its own process on 127.0.0.1. catalogsync runs with its default settings but 4
download workers, so it tags the files (`--no-tags`: `[library] write_tags = false`,
writing them as sent, as aria2c does).

Run from the repository root:  .venv/bin/python bench/cli_latency.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from download_throughput import ServerProcess, run_aria2c  # noqa: E402

from tests.support.audio import mp3_body  # noqa: E402

KIB = 1024
GOAL_STATUS = 0.15
GOAL_EMPTY_WAIT = 0.30
GOAL_ARIA2C = 1.0


def catalogsync_command() -> list[str]:
    """The console script beside this interpreter (what pipx puts on PATH)."""
    script = Path(sys.executable).with_name("catalogsync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "catalogsync"]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(NO_COLOR="1", COLUMNS="120")
    return env


def children_cpu() -> float:
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# CPU seconds of each process timed() ran, in order (steadier than wall time on a
# machine shared with other work: the wall time also counts waiting for a core).
CPU_TIMES: list[float] = []


def timed(command: list[str], env: dict[str, str], *, expect: int = 0) -> float:
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    CPU_TIMES.append(children_cpu() - cpu)
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def runs(times: list[float]) -> str:
    return "runs " + ", ".join(f"{t:.3f}" for t in times)


def make_home(work: Path, name: str, workers: int, tags: bool = True) -> Path:
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    text = f"[download]\nworkers = {workers}\n"
    if not tags:
        text += "\n[library]\nwrite_tags = false\n"
    (home / "config.toml").write_text(text, encoding="utf-8")
    return home


def scenario_latency(args: argparse.Namespace, work: Path, env: dict[str, str]) -> None:
    cli = catalogsync_command()
    home = make_home(work, "home-latency", 4)
    base = [*cli, "--home", str(home)]
    timed([*base, "init"], env)
    # A little history, so status and jobs list have rows to render.
    for _ in range(3):
        timed([*base, "-q", "jobs", "submit", "sync_download", "--wait"], env)
    figures = {}
    for label, extra in (
        ("status", ["status"]),
        ("jobs list", ["jobs", "list"]),
        (
            "jobs submit sync_download --wait (empty job)",
            ["-q", "jobs", "submit", "sync_download", "--wait"],
        ),
    ):
        timed([*base, *extra], env)  # untimed: the page cache
        del CPU_TIMES[:]
        times = [timed([*base, *extra], env) for _ in range(args.repeat)]
        figures[label] = statistics.median(times)
        print(
            f"(a) {label}: median {figures[label]:.3f} s, range {min(times):.3f}-"
            f"{max(times):.3f}; CPU median {statistics.median(CPU_TIMES):.3f} s, range "
            f"{min(CPU_TIMES):.3f}-{max(CPU_TIMES):.3f} ({runs(times)})"
        )
    python = [sys.executable, "-c", "pass"]
    del CPU_TIMES[:]
    times = [timed(python, env) for _ in range(args.repeat)]
    print(
        f"(a) for scale, `python -c pass`: median {statistics.median(times):.3f} s, "
        f"CPU {statistics.median(CPU_TIMES):.3f} s; load average "
        f"{' '.join(f'{n:.2f}' for n in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    print(
        f"(a) goals: status <= {GOAL_STATUS:.2f} s: "
        f"{'met' if figures['status'] <= GOAL_STATUS else 'missed'}; empty submit --wait "
        f"<= {GOAL_EMPTY_WAIT:.2f} s: "
        f"{'met' if figures[list(figures)[2]] <= GOAL_EMPTY_WAIT else 'missed'}"
    )


def run_catalogsync(
    manifest: Path, work: Path, n: int, workers: int, count: int, env: dict[str, str], tags: bool
) -> float:
    home = make_home(work, f"home-songs-{n}", workers, tags)
    base = [*catalogsync_command(), "--home", str(home)]
    timed([*base, "-q", "playlists", "add", str(manifest)], env)
    elapsed = timed([*base, "-q", "jobs", "submit", "sync_download", "--wait"], env)
    # Songs only: the library also holds Playlists/<name>.m3u8 for the wanted playlist.
    got = sum(1 for p in (home / "library").rglob("*") if p.is_file() and p.suffix != ".m3u8")
    shutil.rmtree(home, ignore_errors=True)
    if got != count:
        raise SystemExit(f"catalogsync left {got} of {count} files")
    return elapsed


def scenario_songs(args: argparse.Namespace, work: Path, env: dict[str, str]) -> None:
    files = work / "files"
    size = args.song_kib * KIB
    urls = []
    server = None
    lines = ["#EXTM3U", "#PLAYLIST:Bench"]
    for n in range(1, args.songs + 1):
        name = f"track-{n:04d}.mp3"
        path = files / name
        if not path.exists() or path.stat().st_size != size:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(mp3_body(size, seed=n))
        urls.append(name)
    server = ServerProcess(files)
    try:
        urls = [server.url(name) for name in urls]
        for n, url in enumerate(urls, start=1):
            lines += [f"#EXTINF:200,Bench - Track {n:04d}", url]
        manifest = work / "bench.m3u8"
        manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
        have_aria = shutil.which("aria2c") is not None
        ours, theirs = [], []
        for n in range(-1, args.song_repeat):  # one untimed round first
            elapsed = run_catalogsync(
                manifest, work, n, args.workers, len(urls), env, not args.no_tags
            )
            aria = run_aria2c(urls, work / "aria2c-out", args.workers) if have_aria else None
            if n >= 0:
                ours.append(elapsed)
                if aria is not None:
                    theirs.append(aria)
        total_mib = size * len(urls) / (1024 * 1024)
        mine = statistics.median(ours)
        tagging = "tags off" if args.no_tags else "tags on"
        print(
            f"(b) {len(urls)} x {args.song_kib} KiB, `catalogsync jobs submit sync_download "
            f"--wait` ({args.workers} workers, {tagging}), whole process: {mine:.2f} s, "
            f"{total_mib / mine:.1f} MB/s ({runs(ours)})"
        )
        if not theirs:
            print("(b) aria2c: skipped (aria2c is not installed: apt-get install aria2)")
            return
        peer = statistics.median(theirs)
        print(
            f"(b) aria2c -j{args.workers} -i list: {peer:.2f} s, {total_mib / peer:.1f} MB/s "
            f"({runs(theirs)})"
        )
        ratio = peer / mine
        print(
            f"(b) catalogsync/aria2c speed ratio: {ratio:.2f} (goal >= {GOAL_ARIA2C:.1f}: "
            f"{'met' if ratio >= GOAL_ARIA2C else 'missed'})"
        )
    finally:
        server.close()
        shutil.rmtree(work / "aria2c-out", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="processes per command in (a)")
    parser.add_argument("--songs", type=int, default=300)
    parser.add_argument("--song-kib", type=int, default=256)
    parser.add_argument("--song-repeat", type=int, default=3, help="timed rounds in (b)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--skip-songs", action="store_true", help="run (a) only")
    parser.add_argument(
        "--no-tags",
        action="store_true",
        help="(b) with [library] write_tags = false, as aria2c writes no tags",
    )
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "catalogsync"), quiet=1)
    compileall.compile_dir(str(ROOT / "tui"), quiet=1)
    env = environment()
    with tempfile.TemporaryDirectory(prefix="cli-latency-") as tmp:
        work = Path(tmp)
        print(f"catalogsync: {' '.join(catalogsync_command())}; Python {sys.version.split()[0]}")
        scenario_latency(args, work, env)
        if not args.skip_songs:
            scenario_songs(args, work, env)


if __name__ == "__main__":
    main()
