"""Fixtures shared by every test: a real SQLite file under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogsync import clock


@pytest.fixture(autouse=True)
def _unfrozen_clock():
    yield
    clock.freeze(None)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    from catalogsync.db import initialize_database

    path = tmp_path / "catalogsync.db"
    initialize_database(path, tmp_path / "library").close()
    return path


@pytest.fixture
def repo(db_path: Path):
    from catalogsync.ops.repository import OpsRepository

    repository = OpsRepository(db_path)
    yield repository
    repository.close()


@pytest.fixture
def catalog(db_path: Path):
    from catalogsync.catalog.repository import CatalogRepository

    repository = CatalogRepository(db_path)
    yield repository
    repository.close()
