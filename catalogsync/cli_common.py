"""Shared by the command groups that live in their own modules (``cli_*.py``).

They must not import ``catalogsync.cli`` when they load (it imports them), so the
helpers are looked up there when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def handled(func: Callable[..., Any]) -> Callable[..., Any]:
    """``cli.handles_errors``, resolved at call time: one line on stderr and exit 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from catalogsync.cli import handles_errors

        return handles_errors(func)(*args, **kwargs)

    return wrapper


def cli() -> Any:
    """The ``catalogsync.cli`` module (its ``_service``, ``_state``, ``out``, ``_print_json``)."""
    from catalogsync import cli as module

    return module
