"""The library is the product: every song lands intact, once, and only audio is recorded.

Same-title songs used to share one `.part` and one record, so the job ended `succeeded`
with other songs' bytes on disk. These tests serve songs from a real nginx and from our
own misbehaving server, through the default three workers and the helper process.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zlib
from pathlib import Path

import pytest

from catalogsync import db
from catalogsync.ops import helper_process as helper_module
from catalogsync.ops.recovery import recover_on_start
from catalogsync.ops.runner import OpsRunner
from catalogsync.service import Catalogsync
from tests.catalogsync.pipeline_support import open_service
from tests.support.audio import mp3_body
from tests.support.nginx import nginx_serving


def flac_body(n: int, seed: int = 1) -> bytes:
    """A FLAC stream header (STREAMINFO, 44.1 kHz stereo 16-bit) and ``n`` bytes of frames."""
    info = struct.pack(">HH", 4096, 4096) + b"\x00\x00\x00" * 2
    # 20 bits sample rate, 3 bits channels-1, 5 bits bits-per-sample-1, 36 bits samples
    packed = (44100 << 44) | (1 << 41) | (15 << 36) | 44100
    info += packed.to_bytes(8, "big") + b"\x00" * 16
    header = b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info
    return header + mp3_body(n, seed)[4:]


def write_json_playlist(path: Path, name: str, tracks: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"name": name, "tracks": tracks}), encoding="utf-8")
    return path


def run_download(service: Catalogsync, playlist_ids: list[int] | None = None) -> int:
    job = service.submit_job("sync_download", playlist_ids=playlist_ids).id
    service.run_headless(until_idle=True)
    return int(job)


def recorded(service: Catalogsync) -> dict[int, tuple[str, bytes]]:
    """song id -> (relative path, file bytes) of every library record."""
    root = service.settings.library_root
    rows = service.catalog._fetchall("SELECT song_id, relative_path FROM local_files")
    return {int(r[0]): (r[1], (root / r[1]).read_bytes()) for r in rows}


def song_ids_by_url(service: Catalogsync) -> dict[str, int]:
    rows = service.catalog._fetchall("SELECT id, metadata_json, download_url FROM songs")
    return {str(r["download_url"]): int(r["id"]) for r in rows}


def _same_title_tracks(base: str, count: int) -> list[dict[str, object]]:
    tracks: list[dict[str, object]] = []
    for n in range(count):
        # Six albums that each open with "Intro", and two takes on one album.
        album = f"Album {n}" if n < count - 2 else "Shared Album"
        tracks.append(
            {"url": f"{base}/intro{n}.mp3", "title": "Intro", "artist": "Band", "album": album}
        )
    return tracks


def _assert_each_song_has_its_own_bytes(
    service: Catalogsync, bodies: dict[str, bytes]
) -> dict[int, tuple[str, bytes]]:
    records = recorded(service)
    by_url = song_ids_by_url(service)
    assert len(records) == len(bodies)
    for url, body in bodies.items():
        rel, data = records[by_url[url]]
        assert hashlib.sha256(data).digest() == hashlib.sha256(body).digest(), rel
    assert len({rel for rel, _ in records.values()}) == len(bodies), "one path per song"
    assert service.catalog.library_invariant_violations() == []
    assert not list(service.settings.library_root.rglob("*.part"))
    assert service.catalog.reservations() == []
    return records


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "helper-process"])
def test_same_title_songs_from_nginx_each_land_intact_once(tmp_path, monkeypatch, processes):
    helpers: list[int] = []
    real_start = OpsRunner._start_helper

    def remember(self, *args):
        helper = real_start(self, *args)
        helpers.append(helper.pid)
        return helper

    monkeypatch.setattr(OpsRunner, "_start_helper", remember)
    # Paced by nginx itself, so the songs overlap in the workers (and the helper's).
    with nginx_serving(tmp_path / "nginx", extra_location="limit_rate 600k;") as server:
        bodies = {}
        count = 8
        for n in range(count):
            body = mp3_body(120_000 + n * 4099, seed=300 + n)
            (server.root / f"intro{n}.mp3").write_bytes(body)
            bodies[server.url(f"intro{n}.mp3")] = body
        playlist = write_json_playlist(
            tmp_path / "intros.json", "Intros", _same_title_tracks(server.base_url, count)
        )
        service = open_service(tmp_path / "home")
        service.settings.library.write_tags = False
        if processes == 2:
            monkeypatch.setattr(helper_module, "HELPER_MIN_ITEMS", 1)
            monkeypatch.setattr(helper_module.os, "cpu_count", lambda: 2)
            service.settings.download.workers = 4
            service.settings.download.processes = 2
        try:
            service.add_playlists([str(playlist)])
            job = run_download(service)
            assert service.job_row(job).status == "completed", service.job_detail(job)
            assert len(helpers) == processes - 1
            first = _assert_each_song_has_its_own_bytes(service, bodies)

            again = run_download(service)
            assert service.job_row(again).status == "completed"
            assert recorded(service) == first, "a second run changes nothing"
            download = next(
                s for s in service.job_detail(again).stages if s.stage_type == "download"
            )
            assert download.total_items == 0
        finally:
            service.close()


def test_same_bytes_for_two_songs_are_stored_once_and_both_recorded(tmp_path, http_server):
    body = mp3_body(90_000, seed=9)
    a = http_server.route("/a.mp3", body=body)
    b = http_server.route("/b.mp3", body=body)
    playlist = write_json_playlist(
        tmp_path / "twins.json",
        "Twins",
        [
            {"url": a, "title": "Song", "artist": "One"},
            {"url": b, "title": "Same Song", "artist": "Other"},
        ],
    )
    service = open_service(tmp_path / "home")
    service.settings.library.write_tags = False
    service.settings.download.workers = 1
    try:
        service.add_playlists([str(playlist)])
        job = run_download(service)
        assert service.job_row(job).status == "completed"
        records = recorded(service)
        assert len(records) == 2
        assert len({rel for rel, _ in records.values()}) == 1, "one file serves both songs"
        files = [p for p in service.settings.library_root.rglob("*.mp3") if p.is_file()]
        assert len(files) == 1 and files[0].read_bytes() == body
        assert service.catalog.library_invariant_violations() == []
    finally:
        service.close()


# -- only audio is recorded ------------------------------------------------------


def _one_song_job(tmp_path: Path, url: str, title: str = "Song") -> tuple[Catalogsync, int]:
    playlist = write_json_playlist(
        tmp_path / f"{title}.json", title, [{"url": url, "title": title, "artist": "Band"}]
    )
    service = open_service(tmp_path / "home")
    service.settings.library.write_tags = False
    service.settings.download.max_attempts = 1
    service.add_playlists([str(playlist)])
    return service, run_download(service)


def _failed_item(service: Catalogsync, job: int) -> tuple[str, str]:
    rows = service.repository._fetchall(
        "SELECT ji.last_error_code, ji.last_error FROM job_items ji "
        "JOIN job_stages st ON st.id = ji.job_stage_id "
        "WHERE st.job_run_id = ? AND ji.status = 'failed'",
        (job,),
    )
    assert len(rows) == 1, [tuple(r) for r in rows]
    return str(rows[0][0]), str(rows[0][1])


def _library_is_empty(service: Catalogsync) -> None:
    assert recorded(service) == {}
    assert [p for p in service.settings.library_root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, a common mistake
    ],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw"],
)
def test_a_body_compressed_despite_identity_is_decoded(tmp_path, http_server, encoding, encode):
    body = mp3_body(200_000, seed=4)
    url = http_server.route(
        "/song.mp3", body=encode(body), extra_headers={"Content-Encoding": encoding}
    )
    service, job = _one_song_job(tmp_path, url)
    try:
        assert service.job_row(job).status == "completed", service.job_detail(job)
        [(rel, data)] = recorded(service).values()
        assert data == body and rel.endswith(".mp3")
        assert http_server.requests()[0].headers["accept-encoding"] == "identity"
    finally:
        service.close()


def test_an_encoding_we_cannot_decode_fails_the_song_and_records_nothing(tmp_path, http_server):
    url = http_server.route(
        "/song.mp3", body=b"\x1b\x00\x00br-bytes", extra_headers={"Content-Encoding": "br"}
    )
    service, job = _one_song_job(tmp_path, url)
    try:
        code, message = _failed_item(service, job)
        assert code == "content_encoding"
        assert "compressed as br" in message and url in message
        _library_is_empty(service)
    finally:
        service.close()


def test_a_gzip_body_cut_short_is_not_recorded(tmp_path, http_server):
    packed = gzip.compress(mp3_body(200_000, seed=5))
    url = http_server.route(
        "/song.mp3", body=packed[: len(packed) // 2], extra_headers={"Content-Encoding": "gzip"}
    )
    service, job = _one_song_job(tmp_path, url)
    try:
        code, _message = _failed_item(service, job)
        assert code == "truncated"
        _library_is_empty(service)
    finally:
        service.close()


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"", "audio/mpeg", "not_audio: server sent 0 bytes"),
        (b'{"error": "quota exceeded"}', "application/json", "not_audio: looks like JSON"),
        (b"<html><body>Not found</body></html>", "audio/mpeg", "not_audio: looks like text/html"),
        (b"plain words, not a song at all\n" * 40, "audio/mpeg", "not_audio: looks like text"),
        (b"\x00\x01\x02\x03" * 1000, "audio/mpeg", "not_audio: not a known audio format"),
    ],
    ids=["empty", "json", "html-as-audio", "text", "binary"],
)
def test_a_body_that_is_not_audio_fails_the_song(
    tmp_path, http_server, body, content_type, expected
):
    url = http_server.route("/song.mp3", body=body, content_type=content_type)
    service, job = _one_song_job(tmp_path, url)
    try:
        assert service.job_row(job).status in ("failed", "completed_with_errors")
        code, message = _failed_item(service, job)
        assert code == "not_audio"
        assert message.startswith(expected), message
        assert url in message
        _library_is_empty(service)
    finally:
        service.close()


def test_an_html_page_served_as_html_is_still_refused(tmp_path, http_server):
    url = http_server.route("/song.mp3", body=b"<html>login</html>", content_type="text/html")
    service, job = _one_song_job(tmp_path, url)
    try:
        code, _message = _failed_item(service, job)
        assert code == "unsupported_content"
        _library_is_empty(service)
    finally:
        service.close()


def test_a_flac_served_as_mp3_is_saved_as_flac(tmp_path, http_server):
    body = flac_body(150_000)
    url = http_server.route("/song.mp3", body=body)
    service, job = _one_song_job(tmp_path, url)
    try:
        assert service.job_row(job).status == "completed", service.job_detail(job)
        [(rel, data)] = recorded(service).values()
        assert rel.endswith("/Song.flac") and data == body
        ext = service.catalog._fetchone("SELECT ext FROM local_files")[0]
        assert ext == "flac"
        assert service.catalog.library_invariant_violations() == []
    finally:
        service.close()


def test_a_playlist_line_naming_a_file_that_is_not_audio_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$salt$hash:19000:0:99999:7:::\n" * 20, encoding="utf-8")
    secret.chmod(0o600)
    song = tmp_path / "real.mp3"
    song.write_bytes(mp3_body(50_000, seed=2))
    song.chmod(0o777)
    playlist = tmp_path / "local.m3u"
    playlist.write_text(f"#EXTM3U\n{secret}\n{song}\n", encoding="utf-8")
    service = open_service(tmp_path / "home")
    service.settings.library.write_tags = False
    service.settings.download.max_attempts = 1
    try:
        service.add_playlists([str(playlist)])
        job = run_download(service)
        code, message = _failed_item(service, job)
        assert code == "not_audio" and "looks like text" in message
        assert "root:" not in message, "the file's content is never echoed"
        [(rel, data)] = recorded(service).values()
        assert data == song.read_bytes()
        mode = (service.settings.library_root / rel).stat().st_mode & 0o777
        assert mode & 0o022 == 0 or mode == 0o666 & ~_umask(), oct(mode)
        assert not (mode & 0o111), "a copied file is never executable"
    finally:
        service.close()


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current


# -- the schema ------------------------------------------------------------------


def test_a_v2_database_is_upgraded_in_place_and_keeps_its_files(tmp_path):
    path = tmp_path / "old.db"
    conn = db.connect_database(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for migrate in db.MIGRATIONS[:2]:
        migrate(conn)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO storage_backends (name, kind, target, is_default) "
        "VALUES ('library', 'local', ?, 1)",
        (str(tmp_path / "lib"),),
    )
    conn.execute("INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', 'x', 'Intro')")
    conn.execute(
        "INSERT INTO local_files (song_id, backend_id, relative_path, file_size_bytes, sha256, "
        "created_at) VALUES (1, 1, 'manifest/Band/Intro.MP3', 10, 'ab', '2026-01-01')"
    )
    conn.execute("COMMIT")
    conn.close()

    upgraded = db.initialize_database(path)
    try:
        assert upgraded.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        row = upgraded.execute("SELECT * FROM local_files").fetchone()
        assert row["relative_path"] == "manifest/Band/Intro.MP3"
        assert row["path_key"] == "manifest/band/intro"
        assert row["source_sha256"] == "ab" and row["flushed_at"] == "2026-01-01"
        assert upgraded.execute("SELECT songs, bytes FROM library_summary").fetchone()[:] == (
            1,
            10,
        )
        # The totals triggers came back with the rebuilt table.
        upgraded.execute("DELETE FROM local_files")
        assert upgraded.execute("SELECT songs, bytes FROM library_summary").fetchone()[:] == (
            0,
            0,
        )
    finally:
        upgraded.close()
    again = db.initialize_database(path)  # idempotent
    again.close()


def test_reservations_give_distinct_names_case_and_extension_blind(tmp_path):
    service = open_service(tmp_path / "home")
    try:
        catalog = service.catalog
        conn = catalog._conn()
        for n in range(4):
            conn.execute(
                "INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', ?, 'Intro')",
                (str(n),),
            )
        backend = int(catalog.default_backend()["id"])
        free = lambda rel: False  # noqa: E731
        assert catalog.reserve_path(backend, 1, "Band/Intro.mp3", exists_on_disk=free) == (
            "Band/Intro.mp3"
        )
        assert catalog.reserve_path(backend, 2, "band/INTRO.flac", exists_on_disk=free) == (
            "band/INTRO (2).flac"
        )
        # A file on disk that nobody recorded is never overwritten.
        taken = {"Band/Intro (3).mp3"}
        assert catalog.reserve_path(
            backend, 3, "Band/Intro.mp3", exists_on_disk=taken.__contains__
        ) == ("Band/Intro (4).mp3")
        # A song keeps the name it holds (its .part is found again).
        assert catalog.reserve_path(backend, 1, "Other/Name.mp3", exists_on_disk=free) == (
            "Band/Intro.mp3"
        )
        # The format changes: same name, new extension.
        assert catalog.move_reservation(backend, 1, "Band/Intro.flac", exists_on_disk=free) == (
            "Band/Intro.flac"
        )
        catalog.release_path(backend, 2)
        assert catalog.reserve_path(backend, 4, "Band/Intro.ogg", exists_on_disk=free) == (
            "Band/Intro (2).ogg"
        )
    finally:
        service.close()


def test_a_bare_mpeg2_stream_without_id3_is_audio(tmp_path, http_server):
    """MPEG-2 Layer III frames (24 kHz, 48 kb/s, 144-byte frames) with no ID3 tag."""
    import random

    rng = random.Random(3)
    body = b"".join(b"\xff\xf3\x64\x00" + rng.randbytes(140) for _ in range(600))
    url = http_server.route("/song", body=body)  # no extension in the URL either
    service, job = _one_song_job(tmp_path, url, title="Bare")
    try:
        assert service.job_row(job).status == "completed", service.job_detail(job)
        [(rel, data)] = recorded(service).values()
        assert rel.endswith(".mp3") and data == body
    finally:
        service.close()


def test_the_same_bytes_finishing_in_several_workers_at_once_are_stored_once(tmp_path, http_server):
    """Six songs, one body, three workers finishing together: one file, six records."""
    body = mp3_body(60_000, seed=21)
    urls = [http_server.route(f"/twin{n}.mp3", body=body, rate_bps=200_000) for n in range(6)]
    playlist = write_json_playlist(
        tmp_path / "twins.json",
        "Twins",
        [{"url": u, "title": f"Take {n}", "artist": "Band"} for n, u in enumerate(urls)],
    )
    service = open_service(tmp_path / "home")
    try:
        service.add_playlists([str(playlist)])
        job = run_download(service)
        assert service.job_row(job).status == "completed", service.job_detail(job)
        rows = service.catalog._fetchall("SELECT song_id, relative_path FROM local_files")
        assert len(rows) == 6 and len({r["relative_path"] for r in rows}) == 1
        files = [
            p
            for p in service.settings.library_root.rglob("*")
            if p.is_file() and p.suffix == ".mp3"
        ]
        assert len(files) == 1
        assert service.catalog.library_invariant_violations() == []
        assert not list(service.settings.library_root.rglob("*.ready"))
    finally:
        service.close()


def _serve_changing_song(server, tmp_path: Path, body: bytes) -> tuple[Path, Path]:
    """One song served by nginx, and a playlist naming it: (the served file, the playlist)."""
    song = server.root / "changing.mp3"
    song.write_bytes(body)
    playlist = write_json_playlist(
        tmp_path / "changing.json",
        "Changing",
        [{"url": server.url("changing.mp3"), "title": "Changing", "artist": "Band"}],
    )
    return song, playlist


def _change_on_server(song: Path, body: bytes) -> None:
    """The file changes on the server: same size, new bytes, a new mtime (a new ETag)."""
    import os
    import time

    song.write_bytes(body)
    later = time.time() + 5
    os.utime(song, (later, later))


def test_a_song_that_changed_on_the_server_during_a_pause_is_fetched_whole(tmp_path):
    """The resume sends If-Range with the ETag the `.part` was read under: nginx answers
    the whole new file, never a range of it spliced onto the old bytes."""

    from catalogsync.ops.models import CommandType
    from tests.catalogsync.pipeline_support import wait_for

    first, second = mp3_body(600_000, seed=71), mp3_body(600_000, seed=72)
    with nginx_serving(tmp_path / "nginx", extra_location="limit_rate 150k;") as server:
        song, playlist = _serve_changing_song(server, tmp_path, first)
        service = open_service(tmp_path / "home")
        service.settings.library.write_tags = False
        try:
            service.add_playlists([str(playlist)])
            job = service.submit_job("sync_download").id
            assert service.start_runner_thread()
            assert wait_for(
                lambda: any(
                    (w.downloaded_bytes or 0) > 100_000 for w in service.job_detail(job).workers
                )
            )
            service.command(job, CommandType.PAUSE)
            assert wait_for(lambda: service.job_row(job).status == "paused", timeout=10)
            [part] = list(service.settings.library_root.rglob("*.part"))
            assert 0 < part.stat().st_size < len(first)
            _change_on_server(song, second)
            service.command(job, CommandType.RESUME)
            assert wait_for(lambda: service.job_row(job).status == "completed", timeout=60)
        finally:
            service.stop_runner()
        try:
            [(rel, data)] = recorded(service).values()
            assert data == second, "the new version whole, not old bytes plus a new range"
            assert service.catalog.library_invariant_violations() == []
        finally:
            service.close()
        log = server.access_log.read_text()
        assert " 200 " in log.splitlines()[-1], log


def test_partial_files_no_download_will_resume_are_swept_at_the_next_start(tmp_path):
    """A canceled job's `.part` (kept for a resume that will never come) and a tagging
    try's `.ready` are removed with their reservation when a runner starts; the partial
    file of a song still pending is kept for its resume."""
    from catalogsync.transfer.paths import partial_paths

    service = open_service(tmp_path / "home")
    try:
        catalog = service.catalog
        conn = catalog._conn()
        for n in (1, 2):
            conn.execute(
                "INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', ?, ?)",
                (str(n), f"Song {n}"),
            )
        backend = catalog.default_backend()
        root = Path(backend["target"])
        free = lambda rel: False  # noqa: E731
        leftovers = {}
        for song_id in (1, 2):
            rel = catalog.reserve_path(
                int(backend["id"]), song_id, f"Band/Song {song_id}.mp3", exists_on_disk=free
            )
            part, ready = partial_paths(root / rel, song_id)
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(b"\xff\xfb" * 100)
            ready.write_bytes(b"\xff\xfb" * 100)
            leftovers[song_id] = (part, ready)
        job = service.repository.create_job("download_only", {})
        stage = service.repository.create_stage(job_id=job, stage_type="download", seq_no=1)
        service.repository.create_item(stage, "song_download", "song:2", song_id=2)

        recover_on_start(service.repository, catalog)

        assert not any(path.exists() for path in leftovers[1])
        assert all(path.exists() for path in leftovers[2]), "song 2 resumes: kept"
        held = [r["song_id"] for r in catalog._fetchall("SELECT song_id FROM path_reservations")]
        assert held == [2]
    finally:
        service.close()


def test_a_song_that_changed_on_the_server_after_a_killed_runner_is_fetched_whole(tmp_path):
    """A runner killed mid-body (SIGKILL: no stop path runs) left a `.part` whose
    version was never written down, so the resume was a blind Range and nginx spliced
    the new file's tail onto the old bytes. The ETag is now kept as the body starts."""
    import signal
    import subprocess
    import sys

    from tests.catalogsync.library.library_support import write_config
    from tests.catalogsync.pipeline_support import wait_for

    first, second = mp3_body(1_600_000, seed=81), mp3_body(1_600_000, seed=82)
    home = tmp_path / "home"
    write_config(home, "[library]\nwrite_tags = false\n")
    with nginx_serving(tmp_path / "nginx", extra_location="limit_rate 300k;") as server:
        song, playlist = _serve_changing_song(server, tmp_path, first)
        service = open_service(home)
        try:
            service.add_playlists([str(playlist)])
            job = service.submit_job("sync_download").id
            cli = [sys.executable, "-m", "catalogsync.cli", "--home", str(home), "run"]
            runner = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                assert wait_for(
                    lambda: any(
                        p.stat().st_size > 200_000
                        for p in service.settings.library_root.rglob("*.part")
                    ),
                    timeout=30,
                )
            finally:
                runner.send_signal(signal.SIGKILL)
                runner.wait(10)
            [part] = list(service.settings.library_root.rglob("*.part"))
            assert 0 < part.stat().st_size < len(first)
            _change_on_server(song, second)
            finisher = subprocess.run(
                [*cli, "--until-idle"], capture_output=True, text=True, timeout=120
            )
            assert finisher.returncode == 0, finisher.stderr
            assert service.job_row(job).status == "completed", service.job_detail(job)
            [(_rel, data)] = recorded(service).values()
            assert data == second, "the new version whole, not old bytes plus a new range"
            assert service.catalog.library_invariant_violations() == []
        finally:
            service.close()
        log = server.access_log.read_text()
        assert " 200 " in log.splitlines()[-1], log


def test_an_adts_aac_stream_is_audio(tmp_path, http_server):
    """mutagen knows ADTS only by a `.aac` name; the bytes alone must do (issue 11's list)."""
    body = (Path(__file__).resolve().parents[2] / "fixtures" / "audio" / "silence.aac").read_bytes()
    url = http_server.route("/stream", body=body)  # no extension in the URL
    service, job = _one_song_job(tmp_path, url, title="Radio")
    try:
        assert service.job_row(job).status == "completed", service.job_detail(job)
        [(rel, data)] = recorded(service).values()
        assert rel.endswith("/Radio.aac") and data == body
        assert service.catalog.library_invariant_violations() == []
    finally:
        service.close()
