"""Fixtures shared by every test: a real SQLite file under tmp_path."""

from __future__ import annotations

import shutil
import subprocess
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


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl program."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl program is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key
