"""Songs that share one file (same bytes) stay findable after the flush, verify and a new download."""

from __future__ import annotations

import hashlib

from catalogsync.library.verify import verify_library
from tests.catalogsync.pipeline_support import open_service
from tests.support.audio import mp3_body


def _song(catalog, remote_id: str) -> int:
    conn = catalog._conn()
    conn.execute(
        "INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', ?, ?)",
        (remote_id, f"Take {remote_id}"),
    )
    return int(conn.execute("SELECT id FROM songs WHERE remote_id = ?", (remote_id,)).fetchone()[0])


def test_a_song_sharing_an_unflushed_file_is_synced_with_it_and_not_lost_later(tmp_path):
    service = open_service(tmp_path / "home")
    try:
        catalog = service.catalog
        root = service.settings.library_root
        backend = int(catalog.default_backend()["id"])
        first, twin, other = _song(catalog, "1"), _song(catalog, "2"), _song(catalog, "3")
        (root / "Other.mp3").write_bytes(mp3_body(9_000, seed=6))
        catalog.record_local_file(
            song_id=other, backend_id=backend, relative_path="Other.mp3", file_size_bytes=9_000
        )  # so the library does not look unmounted once the shared file is gone
        body = mp3_body(20_000, seed=5)
        digest = hashlib.sha256(body).hexdigest()
        on_disk = lambda rel: (root / rel).is_file()  # noqa: E731
        rel = catalog.reserve_path(backend, first, "Band/Take.mp3", exists_on_disk=on_disk)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        file_id, _, _, shared = catalog.record_download(
            song_id=first, backend_id=backend, relative_path=rel, file_size_bytes=len(body),
            ext="mp3", sha256=digest, source_sha256=digest, exists=on_disk,
        )
        assert not shared
        # The twin finishes while the first song's record is fresh (renamed, not flushed).
        (root / rel).write_bytes(body)
        assert catalog.share_same_content(
            song_id=twin, backend_id=backend, source_sha256=digest, exists=on_disk
        ) is not None
        catalog.mark_files_synced([file_id])  # what the flusher does once it fsynced the file
        unsynced = catalog._fetchall("SELECT song_id FROM local_files WHERE synced_at IS NULL")
        assert [r[0] for r in unsynced] == [], "the shared record is flushed with its file"

        # The file goes (deleted by hand): verify drops every record of it, not only one.
        (root / rel).unlink()
        report = verify_library(catalog, service.settings.library)
        assert len(report.missing) == 2 and report.in_flight == 0, report.summary()
        assert catalog.library_invariant_violations() == []

        # The next download of the first song keeps its own bytes, not a record of nothing.
        rel = catalog.reserve_path(backend, first, "Band/Take.mp3", exists_on_disk=on_disk)
        (root / f"{rel}.new").write_bytes(body)
        _, got, _, shared = catalog.record_download(
            song_id=first, backend_id=backend, relative_path=rel, file_size_bytes=len(body),
            ext="mp3", sha256=digest, source_sha256=digest, exists=on_disk,
        )
        assert not shared and got == rel
    finally:
        service.close()
