"""`catalogsync tui --web`: the same task center in a browser, through textual-serve.

Each browser tab runs its own `catalogsync tui` process (textual-serve starts it with
Textual's web driver). It listens on 127.0.0.1 only: reach it from another machine
over an SSH tunnel (`ssh -L 8566:127.0.0.1:8566 nas`), never on an open port.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from catalogsync.errors import CatalogsyncError

HOST = "127.0.0.1"


def web_command(global_args: list[str], log_file: Path | None = None) -> str:
    """The command textual-serve runs per browser tab: this interpreter, this home."""
    # Not `-m catalogsync`: the package need not have a __main__ module.
    args = [
        sys.executable,
        "-c",
        "import sys; from catalogsync.cli import main; "
        "sys.argv[0] = 'catalogsync'; sys.exit(main())",
        *global_args,
        "tui",
    ]
    if log_file is not None:
        args += ["--log-file", str(log_file)]
    return shlex.join(args)


def serve_web(
    global_args: list[str], *, port: int, log_file: Path | None = None, console: Any = None
) -> None:
    """Serve the task center on http://127.0.0.1:PORT until Ctrl+C."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise CatalogsyncError(
            "--web needs textual-serve: pip install 'catalogsync[web]'"
        ) from None
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise CatalogsyncError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    url = f"http://{HOST}:{port}"
    if console is not None:
        console.print(
            f"task center on {url} (this machine only; from elsewhere: "
            f"ssh -L {port}:{HOST}:{port} THIS_HOST)",
            markup=False,
        )
    Server(
        web_command(global_args, log_file),
        host=HOST,
        port=port,
        title="catalogsync",
        public_url=url,
    ).serve()
