"""Errors a user can cause: each carries a message fit to print on one line."""

from __future__ import annotations


class CatalogsyncError(Exception):
    """Base class: the CLI prints ``str(err)`` on one line and exits 1.

    ``str()`` masks URL credentials (``http://bob:***@host``): a message built from a
    playlist URL with a password never shows it, wherever it is printed or stored.
    """

    def __str__(self) -> str:
        from catalogsync.redact import mask_secrets

        return mask_secrets(super().__str__())


class ConfigError(CatalogsyncError):
    """The configuration file or a setting is invalid."""


class NotFoundError(CatalogsyncError):
    """A job, playlist or backend named by the user does not exist."""


class InvalidTransitionError(CatalogsyncError):
    """A command is not allowed in the job's current state."""


class LeaseHeldError(CatalogsyncError):
    """Another live runner owns the queue of this database."""

    def __init__(self, owner: str, pid: int, host: str) -> None:
        self.owner, self.pid, self.host = owner, pid, host
        super().__init__(
            f"another runner holds the queue of this database (pid {pid} on {host}); "
            "stop it first or attach to it with `catalogsync tui`"
        )


class PlaylistFormatError(CatalogsyncError):
    """A playlist file is malformed; the message names the file and the line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class ProviderError(CatalogsyncError):
    """A provider could not list a playlist or resolve a track."""


class TransferError(CatalogsyncError):
    """A transfer failed.

    ``code`` is a short machine-readable reason stored as ``last_error_code``
    (``http_404``, ``size_mismatch``, ``timeout``...); ``permanent`` errors are
    never retried.
    """

    def __init__(self, message: str, *, code: str = "transfer_error", permanent: bool = False):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class CatalogsyncSignal(Exception):
    """Base of signals: control flow between our layers, never an error shown to a user.

    Deliberately not a ``CatalogsyncError``, so an ``except CatalogsyncError`` meant for
    user errors never swallows one.
    """


class TransferStopped(CatalogsyncSignal):
    """A transfer stopped at a chunk boundary because its job was paused or canceled."""


class StorageFullError(CatalogsyncError):
    """No room left on the target: the job pauses instead of failing every item."""


class StorageUnavailableError(CatalogsyncError):
    """The target cannot be written (read-only, permission denied, unreachable)."""


class StorageError(CatalogsyncError):
    """The database or the library cannot be used: ``<path>: <what> (<what to do>)``.

    Raised at open (not SQLite, corrupt, wrong schema, read-only, disk full) and when
    such a fault appears mid-run, where it stops the runner with a non-zero exit.
    """

    def __init__(self, path: object, what: str, hint: str) -> None:
        self.path, self.what, self.hint = str(path), what, hint
        super().__init__(f"{path}: {what} ({hint})")


def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (ending in ``...``) for a one-line message."""
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."
