"""Fixtures for engine tests: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.audio import mp3_body
from tests.support.httpserver import LocalServer, start_server, stop_server


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A ThreadingHTTPServer on a random 127.0.0.1 port, shut down after the test."""
    local, thread, server = start_server()
    try:
        yield local
    finally:
        stop_server(server, thread)


@pytest.fixture
def payload() -> bytes:
    """Deterministic, non-repeating-looking bytes (300 KiB)."""
    return mp3_body(300 * 1024)


@pytest.fixture
def v2_layout(tmp_path):
    """``tmp_path / "home"`` keeps the v2 layout, untagged (byte-identical transfers)."""
    from tests.catalogsync.pipeline_support import use_v2_layout

    return use_v2_layout(tmp_path / "home")
