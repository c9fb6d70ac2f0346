"""One library-wide operation at a time: a verify never undoes a reorganize in progress."""

from __future__ import annotations

import pytest

from catalogsync.library.lock import LibraryBusyError, library_is_busy, library_lock
from catalogsync.library.reorganize import reorganize
from catalogsync.library.verify import verify_library
from catalogsync.ops.recovery import recover_on_start
from tests.catalogsync.pipeline_support import open_service


def test_verify_and_reorganize_refuse_while_another_holds_the_library(tmp_path):
    service = open_service(tmp_path / "home")
    try:
        catalog = service.catalog
        with library_lock(catalog.db_path, "library reorganize"):
            assert library_is_busy(catalog.db_path)
            with pytest.raises(LibraryBusyError) as busy:
                verify_library(catalog, service.settings.library)
            message = str(busy.value)
            assert message.startswith("library verify: the library is busy (library reorganize")
            assert "\n" not in message
            with pytest.raises(LibraryBusyError):
                reorganize(catalog, service.settings.library)
            # A dry run moves nothing, so it needs no lock.
            assert reorganize(catalog, service.settings.library, dry_run=True).dry_run
        assert not library_is_busy(catalog.db_path)
        verify_library(catalog, service.settings.library)  # free again
    finally:
        service.close()


def test_a_runner_starting_during_a_reorganize_keeps_its_reserved_names(tmp_path):
    service = open_service(tmp_path / "home")
    try:
        catalog = service.catalog
        conn = catalog._conn()
        conn.execute("INSERT INTO songs (platform, remote_id, name) VALUES ('manifest', 'a', 'A')")
        backend = int(catalog.default_backend()["id"])
        catalog.reserve_path(backend, 1, "Band/A.mp3", exists_on_disk=lambda rel: False)
        with library_lock(catalog.db_path, "library reorganize"):
            recover_on_start(service.repository, catalog)
            assert [r["relative_path"] for r in catalog.reservations()] == ["Band/A.mp3"]
        recover_on_start(service.repository, catalog)
        assert catalog.reservations() == [], "no unfinished download holds it: freed"
    finally:
        service.close()
