"""Upload jobs end to end: library files to a real WebDAV server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from catalogsync import cli
from tests.catalogsync.backends.conftest import DAV_PASSWORD, DAV_USER
from tests.catalogsync.pipeline_support import open_service, serve_songs, write_m3u

pytest.importorskip("wsgidav", reason="the WebDAV tests need wsgidav (dev extra)")

# Transfer tests: byte-identical files in the v2 layout (see pipeline_support).
pytestmark = pytest.mark.usefixtures("v2_layout")


@pytest.fixture
def library(tmp_path, http_server, monkeypatch):
    """A home whose library holds three downloaded songs, and a `dav` backend."""
    monkeypatch.setenv("DAV_TEST_PASSWORD", DAV_PASSWORD)
    service = open_service(tmp_path / "home")
    songs = serve_songs(http_server, 3)
    path = write_m3u(tmp_path / "p.m3u", [("A", f"S{n}", u) for n, u in enumerate(songs)])
    service.add_playlists([str(path)])
    service.submit_job("sync_download")
    service.run_headless(until_idle=True)
    yield service, songs
    service.close()


def _add_dav(service, server, password_env="DAV_TEST_PASSWORD"):
    service.catalog.add_backend(
        "dav", "webdav", server.url, {"username": DAV_USER, "password_env": password_env}
    )


def test_upload_to_webdav_then_a_second_run_uploads_nothing(library, webdav_server):
    service, songs = library
    _add_dav(service, webdav_server)
    job = service.submit_job("upload_only", backend="dav").id
    service.run_headless(until_idle=True)
    assert service.job_row(job).status == "completed"
    for n, body in enumerate(songs.values()):
        assert (webdav_server.root / "manifest" / "A" / f"S{n}.mp3").read_bytes() == body
    puts = len(webdav_server.faults.methods("PUT"))
    assert puts == 3

    again = service.submit_job("upload_only", backend="dav").id
    service.run_headless(until_idle=True)
    assert service.job_row(again).status == "completed"
    assert service.job_detail(again).stages[0].total_items == 0
    assert len(webdav_server.faults.methods("PUT")) == puts


def test_a_file_already_on_the_server_is_skipped_not_sent(library, webdav_server):
    service, songs = library
    _add_dav(service, webdav_server)
    target = webdav_server.root / "manifest" / "A"
    target.mkdir(parents=True)
    (target / "S0.mp3").write_bytes(list(songs.values())[0])
    job = service.submit_job("upload_only", backend="dav").id
    service.run_headless(until_idle=True)
    stage = service.job_detail(job).stages[0]
    assert (stage.skipped_items, stage.success_items) == (1, 2)
    assert "/music/manifest/A/S0.mp3" not in webdav_server.faults.methods("PUT")


def test_insufficient_storage_pauses_the_job_with_an_event(library, webdav_server):
    service, _ = library
    _add_dav(service, webdav_server)
    webdav_server.faults.put_status = 507
    job = service.submit_job("upload_only", backend="dav").id
    service.run_headless(until_idle=True)
    row = service.job_row(job)
    assert row.status == "paused"
    events = [e.message for e in service.job_detail(job).events]
    assert any("paused" in m and "dav" in m for m in events), events
    items = service.repository.list_stage_items(service.job_detail(job).stages[0].id)
    assert {i.status.value for i in items} == {"pending"}, "nothing is recorded as uploaded"


def test_a_truncating_server_is_caught_by_verification(library, webdav_server):
    service, _ = library
    _add_dav(service, webdav_server)
    webdav_server.faults.truncate_put_to = 1000
    job = service.submit_job("upload_only", backend="dav").id
    from unittest.mock import patch

    with patch("catalogsync.ops.workers.retry_delay", return_value=0.01):
        service.run_headless(until_idle=True)
    assert service.job_row(job).status == "failed"
    items = service.repository.list_stage_items(service.job_detail(job).stages[0].id)
    assert {i.last_error_code for i in items} == {"verify_failed"}
    remote = service.catalog.list_library_files(service.catalog.get_backend("dav")["id"])
    assert remote == [], "a copy that failed verification is never recorded"


def test_wrong_password_pauses_with_one_clear_line_without_the_secret(
    library, webdav_server, monkeypatch
):
    service, _ = library
    monkeypatch.setenv("DAV_WRONG", "not-the-password")
    _add_dav(service, webdav_server, password_env="DAV_WRONG")
    job = service.submit_job("upload_only", backend="dav").id
    service.run_headless(until_idle=True)
    row = service.job_row(job)
    assert row.status == "paused"
    assert "401" in row.pause_reason and "\n" not in row.pause_reason
    assert "not-the-password" not in json.dumps(dataclasses.asdict(service.job_detail(job)))


def test_backends_test_command_probes_the_server(tmp_path, webdav_server, monkeypatch):
    monkeypatch.setenv("DAV_TEST_PASSWORD", DAV_PASSWORD)
    home = str(tmp_path / "home")

    def run(*args):
        result = CliRunner().invoke(cli.app, ["--home", home, *args])
        service = cli._state.pop("service", None)
        if service is not None:
            service.close()
        return result

    added = run(
        "backends",
        "add",
        "dav",
        "--kind",
        "webdav",
        "--target",
        webdav_server.url,
        "-o",
        f"username={DAV_USER}",
        "-o",
        "password_env=DAV_TEST_PASSWORD",
    )
    assert added.exit_code == 0, added.output
    probed = run("backends", "test", "dav")
    assert probed.exit_code == 0, probed.output
    assert "OK" in probed.stdout
    assert not list(webdav_server.root.iterdir()), "the probe file was deleted"
    secret = run(
        "backends",
        "add",
        "bad",
        "--kind",
        "webdav",
        "--target",
        webdav_server.url,
        "-o",
        f"password={DAV_PASSWORD}",
    )
    assert secret.exit_code == 1 and "never go on the command line" in secret.stderr
