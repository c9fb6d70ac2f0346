"""The systemd unit for `catalogsync run`: Type=notify, watchdog, restart and hardening."""

from __future__ import annotations

import getpass
import os
import shlex
import sys
from pathlib import Path

from catalogsync.config import Settings

UNIT_NAME = "catalogsync.service"
WATCHDOG_SECONDS = 60  # the runner pings every 10 s at most, see sdnotify.SystemdNotifier


def _quote(value: str | Path) -> str:
    """One word for systemd's command-line and path lists (double quotes when needed)."""
    text = str(value)
    if text and all(c.isalnum() or c in "/._-+=:@," for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def runner_command(settings: Settings) -> list[str]:
    """The program and arguments that start this installation's runner."""
    script = Path(sys.executable).parent / "catalogsync"
    program = [str(script)] if script.exists() else [sys.executable, "-m", "catalogsync.cli"]
    args: list[str] = []
    if settings.home is not None:
        args += ["--home", str(settings.home)]
    else:
        if os.environ.get("CATALOGSYNC_DB"):
            args += ["--db", str(settings.db_path)]
        if os.environ.get("CATALOGSYNC_LIBRARY"):
            args += ["--library", str(settings.library_root)]
    return program + args + ["run"]


def writable_paths(settings: Settings) -> list[str]:
    """What the runner writes: home or the database's folder, the library, the log folder."""
    paths: list[Path] = []
    if settings.home is not None:
        paths.append(settings.home)
    paths += [settings.db_path.parent, settings.library_root]
    words = []
    for path in dict.fromkeys(p.resolve() for p in paths):
        words.append(_quote(path))
    log_file = settings.unattended.log.file
    if log_file:
        folder = Path(log_file).expanduser().resolve().parent
        if folder not in paths:
            words.append("-" + _quote(folder))  # "-": a missing folder is not an error
    return words


def unit_text(settings: Settings, *, user: bool) -> str:
    """The unit file's text (``user``: for `systemctl --user`, else a system unit)."""
    exec_start = " ".join(_quote(word) for word in runner_command(settings))
    account = ""
    if not user:
        # A system unit runs as whoever installs it; under sudo that is the sudo user.
        name = os.environ.get("SUDO_USER") if os.geteuid() == 0 else getpass.getuser()
        account = f"User={name}\n" if name and name != "root" else ""
    return f"""\
[Unit]
Description=catalogsync runner: keeps the music library in step with its playlists
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
{account}ExecStart={exec_start}
Restart=on-failure
RestartSec=10
WatchdogSec={WATCHDOG_SECONDS}
TimeoutStopSec=60
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={" ".join(writable_paths(settings))}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes

[Install]
WantedBy={"default.target" if user else "multi-user.target"}
"""


def unit_path(*, user: bool) -> Path:
    """Where systemd looks for a unit we install."""
    if user:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "systemd" / "user" / UNIT_NAME
    return Path("/etc/systemd/system") / UNIT_NAME


def next_commands(*, user: bool) -> list[str]:
    systemctl = "systemctl --user" if user else "systemctl"
    commands = [f"{systemctl} daemon-reload", f"{systemctl} enable --now {UNIT_NAME}"]
    if user:
        commands.append(
            f"loginctl enable-linger {shlex.quote(getpass.getuser())}"
            "   # keep it running while you are logged out"
        )
    return commands
