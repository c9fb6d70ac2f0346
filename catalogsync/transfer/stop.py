"""The ``should_stop`` callables every transfer loop takes, and the one that never stops."""

from __future__ import annotations

from collections.abc import Callable

StopCheck = Callable[[], bool]


def never() -> bool:
    """A ``should_stop`` that never asks to stop."""
    return False
