"""Job-end notifications through Apprise's json:// scheme to a real receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from catalogsync.config import NotifySettings
from catalogsync.errors import ConfigError
from catalogsync.notify import Notifier, describe_url, notification_urls
from catalogsync.ops.models import JobStatus
from tests.catalogsync.pipeline_support import write_m3u
from tests.support.audio import mp3_body

pytest.importorskip("apprise", reason="Apprise is the optional extra catalogsync[notify]")

SECRET = "s3cret-token"


class Receiver:
    """A webhook receiver: what Apprise's json:// posts, and a switch to hold answers back."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.auth: list[str] = []
        self.hold = threading.Event()
        self.hold.set()  # answer at once unless a test clears it
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                receiver.posts.append(json.loads(self.rfile.read(length) or b"{}"))
                receiver.auth.append(self.headers.get("authorization") or "")
                receiver.arrived.set()
                receiver.hold.wait(30)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"json://catalogsync:{SECRET}@127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _home(tmp_path: Path, notify: str):
    from catalogsync.service import Catalogsync

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(notify, encoding="utf-8")
    return Catalogsync.open(home=str(home))


def _mixed_job(service, http_server, tmp_path) -> int:
    ok = [http_server.route(f"/ok{n}.mp3", body=mp3_body(40_000 + n, seed=n)) for n in range(2)]
    gone = http_server.route("/gone.mp3", status=404)
    entries = [("A", "Ok 0", ok[0]), ("A", "Ok 1", ok[1]), ("A", "Gone", gone)]
    playlist = service.add_playlists([str(write_m3u(tmp_path / "mix.m3u", entries))])[0].id
    return service.submit_job("sync_download", playlist_ids=[playlist]).id


def test_a_finished_job_sends_one_message_with_outcome_songs_reasons_and_bytes(
    tmp_path, http_server, receiver
):
    service = _home(
        tmp_path,
        f'[notify]\nurls = ["{receiver.url()}"]\non = ["completed_with_errors", "failed"]\n',
    )
    try:
        job = _mixed_job(service, http_server, tmp_path)
        service.run_headless(until_idle=True)  # delivers what is queued before it returns
        assert service.job_row(job).status == JobStatus.COMPLETED_WITH_ERRORS
    finally:
        service.close()
    assert len(receiver.posts) == 1, "one message per job end (the sync stage sends none)"
    post = receiver.posts[0]
    assert post["title"] == f"catalogsync: job {job} completed with errors"
    body = post["message"]
    assert f"(job {job}, sync_download): completed with errors" in body
    assert "songs added: 2 (0.1 MB)" in body
    assert "failed: 1 (http_404 x1)" in body
    assert post["type"] == "warning"
    # The secret went where it belongs (the receiver's authorization header), nowhere else.
    assert base64.b64decode(receiver.auth[0].split()[1]).decode() == f"catalogsync:{SECRET}"
    snapshot = json.dumps(service.repository.require_job(job).config_snapshot)
    assert SECRET not in snapshot


def test_outcomes_not_in_on_send_nothing(tmp_path, http_server, receiver):
    service = _home(tmp_path, f'[notify]\nurls = ["{receiver.url()}"]\n')  # default on
    try:
        job = service.submit_job("download_only").id
        service.run_headless(until_idle=True)
        assert service.job_row(job).status == JobStatus.COMPLETED
    finally:
        service.close()
    assert receiver.posts == []


def test_an_undeliverable_notification_is_an_event_and_a_log_line_never_a_failed_job(
    tmp_path, caplog
):
    url = f"json://catalogsync:{SECRET}@127.0.0.1:{_closed_port()}/hook"
    service = _home(tmp_path, f'[notify]\nurls = ["{url}"]\non = ["completed"]\n')
    try:
        job = service.submit_job("download_only").id
        with caplog.at_level(logging.INFO, logger="catalogsync"):
            service.run_headless(until_idle=True)
        assert service.job_row(job).status == JobStatus.COMPLETED
        events = [
            e for e in service.repository.list_events(job) if e["event_type"] == "notify_failed"
        ]
    finally:
        service.close()
    assert [e["message"] for e in events] == [
        f"notification for job {job} could not be delivered to json://127.0.0.1"
    ]
    assert any("could not be delivered" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(events)


def test_delivery_happens_off_the_runners_thread(repo, receiver):
    notifier = Notifier(NotifySettings(urls=[receiver.url()], on=["completed"]), repo)
    job = repo.create_job("download_only", {})
    repo.set_job_status(job, JobStatus.COMPLETED)
    receiver.hold.clear()  # the receiver answers only once we let it
    notifier.job_ended(job)  # returns while the message is still on its way
    assert receiver.arrived.wait(30), "the message never reached the receiver"
    assert notifier.delivered == 0
    receiver.hold.set()
    notifier.close(timeout=30)
    assert notifier.delivered == 1


def test_urls_from_the_environment_and_their_description_hide_secrets(repo):
    settings = NotifySettings(urls=["ntfy://ntfy.example/topic"], urls_env="CS_NOTIFY")
    env = {"CS_NOTIFY": f"json://u:{SECRET}@127.0.0.1:9/a, gotify://host/{SECRET}"}
    urls = notification_urls(settings, env)
    assert urls == [
        "ntfy://ntfy.example/topic",
        f"json://u:{SECRET}@127.0.0.1:9/a",
        f"gotify://host/{SECRET}",
    ]
    assert [describe_url(u) for u in urls] == [
        "ntfy://ntfy.example",
        "json://127.0.0.1",
        "gotify://host",
    ]
    Notifier(NotifySettings(urls_env="CS_NOTIFY"), repo, environ={})
    assert "$CS_NOTIFY (urls_env) is not set" in repo.list_events()[0]["message"]


def test_a_url_apprise_does_not_understand_is_an_event_naming_only_its_scheme(repo):
    notifier = Notifier(NotifySettings(urls=[f"nosuchscheme://{SECRET}@host/x"]), repo)
    assert not notifier.enabled
    message = repo.list_events()[0]["message"]
    assert "notification URL #1 (nosuchscheme://host)" in message
    assert SECRET not in message


def test_without_apprise_installed_the_runner_says_how_to_get_it(repo, monkeypatch):
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise raises ImportError
    notifier = Notifier(NotifySettings(urls=["json://127.0.0.1:9/x"]), repo)
    assert not notifier.enabled
    assert "pip install 'catalogsync[notify]'" in repo.list_events()[0]["message"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[notify]\non = ["done"]\n', "on: 'done' is not one of"),
        ("[notify]\nurls = 3\n", "urls must be a list of strings"),
        ('[notify]\nurls_env = ""\n', "urls_env must be the name"),
    ],
)
def test_a_bad_notify_table_is_one_config_error(tmp_path, table, message):
    from catalogsync.config import load_settings

    (tmp_path / "config.toml").write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(home=str(tmp_path))
    assert message in str(info.value) and "[notify]" in str(info.value)
