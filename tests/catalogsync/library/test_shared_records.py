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
            song_id=first,
            backend_id=backend,
            relative_path=rel,
            file_size_bytes=len(body),
            ext="mp3",
            sha256=digest,
            source_sha256=digest,
            exists=on_disk,
        )
        assert not shared
        # The twin finishes while the first song's record is fresh (renamed, not flushed).
        (root / rel).write_bytes(body)
        assert (
            catalog.share_same_content(
                song_id=twin, backend_id=backend, source_sha256=digest, exists=on_disk
            )
            is not None
        )
        catalog.mark_files_flushed([file_id])  # what the flusher does once it fsynced the file
        unflushed = catalog._fetchall("SELECT song_id FROM local_files WHERE flushed_at IS NULL")
        assert [r[0] for r in unflushed] == [], "the shared record is flushed with its file"

        # The file goes (deleted by hand): verify drops every record of it, not only one.
        (root / rel).unlink()
        report = verify_library(catalog, service.settings.library)
        assert len(report.missing) == 2 and report.in_flight == 0, report.summary()
        assert catalog.library_invariant_violations() == []

        # The next download of the first song keeps its own bytes, not a record of nothing.
        rel = catalog.reserve_path(backend, first, "Band/Take.mp3", exists_on_disk=on_disk)
        (root / f"{rel}.new").write_bytes(body)
        _, got, _, shared = catalog.record_download(
            song_id=first,
            backend_id=backend,
            relative_path=rel,
            file_size_bytes=len(body),
            ext="mp3",
            sha256=digest,
            source_sha256=digest,
            exists=on_disk,
        )
        assert not shared and got == rel
    finally:
        service.close()


def test_reorganize_leaves_a_shared_file_at_its_numbered_name(tmp_path):
    """Two songs share `Intro (2).mp3` (a third song holds `Intro.mp3`): the sharer's own
    record must not push the file to `Intro (3)`, and back again on the next run."""
    from catalogsync.config import LibrarySettings
    from catalogsync.library.reorganize import reorganize

    service = open_service(tmp_path / "home")
    try:
        catalog = service.catalog
        root = service.settings.library_root
        backend = int(catalog.default_backend()["id"])
        conn = catalog._conn()
        for remote_id in ("c", "a", "b"):
            conn.execute(
                "INSERT INTO songs (platform, remote_id, name, singers) "
                "VALUES ('manifest', ?, 'Intro', 'Band')",
                (remote_id,),
            )
        (root / "Band").mkdir(parents=True)
        for song_id, rel, seed in ((1, "Band/Intro.mp3", 1), (2, "Band/Intro (2).mp3", 2)):
            body = mp3_body(8_000, seed=seed)
            (root / rel).write_bytes(body)
            catalog.record_local_file(
                song_id=song_id,
                backend_id=backend,
                relative_path=rel,
                file_size_bytes=len(body),
                source_sha256=f"sha{seed}",
            )
        assert (
            catalog.share_same_content(
                song_id=3,
                backend_id=backend,
                source_sha256="sha2",
                exists=lambda rel: (root / rel).is_file(),
            )
            is not None
        )
        library = LibrarySettings(template="{artist}/{title}", write_tags=False)
        for _ in range(2):
            report = reorganize(catalog, library)
            assert report.moves == [], report.summary()
        rows = catalog._fetchall("SELECT song_id, relative_path FROM local_files ORDER BY song_id")
        assert [tuple(r) for r in rows] == [
            (1, "Band/Intro.mp3"),
            (2, "Band/Intro (2).mp3"),
            (3, "Band/Intro (2).mp3"),
        ]
        assert catalog.reservations() == []
    finally:
        service.close()
