"""A file catalogsync did not write is never overwritten, even at a name a song reserved."""

from __future__ import annotations

import json
import threading

from tests.catalogsync.pipeline_support import open_service, wait_for
from tests.support.audio import mp3_body


def test_a_file_put_at_the_reserved_name_during_the_download_is_kept(tmp_path, http_server):
    body = mp3_body(200_000, seed=61)
    url = http_server.route("/song.mp3", body=body, rate_bps=100_000)
    playlist = tmp_path / "mine.json"
    playlist.write_text(
        json.dumps({"name": "Mine", "tracks": [{"url": url, "title": "Song", "artist": "Band"}]}),
        encoding="utf-8",
    )
    service = open_service(tmp_path / "home")
    root = service.settings.library_root
    theirs: list[str] = []

    def copy_in_by_hand() -> None:
        # While the song downloads, the user copies their own file to the very name.
        if wait_for(lambda: list(root.rglob("*.part")), timeout=30):
            [held] = service.catalog.reservations()
            path = root / held["relative_path"]
            path.write_bytes(b"the user's own recording")
            theirs.append(held["relative_path"])

    try:
        service.settings.library.write_tags = False
        service.add_playlists([str(playlist)])
        job = service.submit_job("sync_download").id
        helper = threading.Thread(target=copy_in_by_hand)
        helper.start()
        service.run_headless(until_idle=True)
        helper.join(timeout=30)
        assert service.job_row(job).status == "completed"
        assert theirs, "the download was seen in progress"
        assert (root / theirs[0]).read_bytes() == b"the user's own recording"
        [record] = service.catalog.list_library_files(service.catalog.default_backend()["id"])
        assert record["relative_path"] != theirs[0]
        assert (root / record["relative_path"]).read_bytes() == body
        assert service.catalog.library_invariant_violations() == []
    finally:
        service.close()
