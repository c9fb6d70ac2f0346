"""Settings: where things live (platformdirs or one --home folder) and `config.toml`."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, field
from pathlib import Path
from typing import Any

from catalogsync.config_schema import SOURCE_KINDS, validate
from catalogsync.errors import ConfigError
from catalogsync.files import read_regular_file
from catalogsync.records import record
from catalogsync.transfer.pacing import PlatformPacing
from catalogsync.transfer.windows import BandwidthWindow

APP_NAME = "catalogsync"
__all__ = ["SOURCE_KINDS", "Settings", "load_settings"]

DEFAULT_CONFIG_TEXT = """\
# catalogsync configuration. Every key is optional; the values shown are the defaults.

# The library: where downloads land, their layout, tags and playlist files (docs/library.md).
# [library]
# root = "/srv/music"             # the default `library` backend (old form: library = "...")
# template = "{albumartist}/{album}/{track:02} {title}"
# playlists = "Playlists"         # .m3u8 per wanted playlist in this folder of the root; "" = none
# write_tags = true               # title, artist, album, track, date, catalogsync_source
# cover_art = true                # embed the provider's cover (at most 5 MB)
# overwrite_tags = false          # true: replace tags a downloaded file already has
# trash_days = 30                 # `library verify --fix` keeps replaced files this long

[runner]
download_lane_concurrency = 1     # download-class jobs running at once
general_lane_concurrency = 3      # collect / sync / upload jobs running at once

[download]
workers = 3                       # songs downloaded at once inside a job
processes = "auto"                # processes those workers run in ("auto": 2 on 2+ cores, see docs)
max_bytes_per_sec = 0             # shared bandwidth limit, 0 = none
max_attempts = 3                  # tries per song before it is marked failed
reserve_mb = 200                  # free space kept on the library disk
stall_seconds = 90                # a song whose server sends nothing this long in total fails

[upload]
workers = 2
max_bytes_per_sec = 0
max_attempts = 3

# Sources that `collect` turns into playlists:
# [[sources]]
# name = "my-lists"
# kind = "manual_file"            # a text file listing playlist files or URLs, one per line
# path = "/srv/playlists.txt"
#
# [[sources]]
# name = "exports"
# kind = "directory"              # every playlist file in a folder
# path = "/srv/playlists"
"""


@record
class SourceConfig:
    """One `[[sources]]` entry."""

    name: str
    kind: str
    path: str | None = None
    provider: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@record
class TransferSettings:
    workers: int = 3
    max_bytes_per_sec: int = 0
    max_attempts: int = 3
    reserve_mb: int = 200
    # Download only: "auto" (a helper process on 2+ cores) or a count; see
    # `ops/helper_process.py`.
    processes: int | str = "auto"
    stall_seconds: int = 90  # download only: seconds without a byte, summed over retries


@record
class LibrarySettings:
    """The `[library]` table: layout, tags and playlist files of the local library."""

    template: str = "{albumartist}/{album}/{track:02} {title}"
    playlists: str = "Playlists"  # folder of .m3u8 files inside the root; "" = none
    write_tags: bool = True
    cover_art: bool = True
    trash_days: int = 30
    overwrite_tags: bool = False  # True: our values replace tags the source file already has


@record
class TuiSettings:
    """The `[tui]` table: refresh interval and `[tui.keys]` (binding id -> key)."""

    refresh_seconds: float = 1.0
    keys: dict[str, str] = field(default_factory=dict)


def _tui(table: Any, where: str) -> TuiSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    seconds = table.get("refresh_seconds", 1.0)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0.1 <= seconds <= 60
    ):
        raise ConfigError(
            f"{where}: refresh_seconds must be a number from 0.1 to 60, got {seconds!r}"
        )
    keys = table.get("keys", {})
    if not isinstance(keys, dict) or not all(
        isinstance(v, str) and v.strip() for v in keys.values()
    ):
        raise ConfigError(
            f'{where}: keys must be a table of binding id = "key" (e.g. "task.pause" = "z")'
        )
    return TuiSettings(
        refresh_seconds=float(seconds), keys={str(k): v.strip() for k, v in keys.items()}
    )


@record
class Settings:
    """Resolved settings; a job stores ``snapshot()`` of the settings it ran with."""

    home: Path | None
    config_path: Path
    db_path: Path
    library_root: Path
    download_lane_concurrency: int = 1
    general_lane_concurrency: int = 3
    download: TransferSettings = field(default_factory=TransferSettings)
    upload: TransferSettings = field(
        default_factory=lambda: TransferSettings(workers=2, processes=1)
    )
    sources: list[SourceConfig] = field(default_factory=list)
    library: LibrarySettings = field(default_factory=LibrarySettings)
    unattended: UnattendedSettings = field(default_factory=lambda: UnattendedSettings())
    # --library / CATALOGSYNC_LIBRARY given: this process only, never saved or recorded.
    library_override: bool = False
    library_configured: Path | None = None  # the root config.toml names, if any
    tui: TuiSettings = field(default_factory=TuiSettings)

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        notify = data["unattended"]["notify"]
        notify["urls"] = ["(hidden)" for _ in notify["urls"]]  # notification URLs hold secrets
        return {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in data.items()
            if key not in ("home", "config_path", "library_override", "library_configured", "tui")
        }

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"{self.config_path}: no source named {name!r} (known: {known})")


def _absolute(path: str | Path) -> Path:
    """``path`` made absolute; resolved when it can be (a symlink loop cannot)."""
    expanded = Path(path).expanduser()
    try:
        return expanded.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the open reports it in one line
        return Path(os.path.abspath(expanded))


def resolve_paths(
    home: str | Path | None = None, db: str | Path | None = None, library: str | Path | None = None
) -> tuple[Path | None, Path, Path, Path]:
    """(home, config path, db path, library) from flags, environment, then platformdirs."""
    home = home or os.environ.get("CATALOGSYNC_HOME")
    if home:
        home_path = _absolute(home)
        config_path = home_path / "config.toml"
        default_db = home_path / "catalogsync.db"
        default_library = home_path / "library"
    else:
        import platformdirs

        home_path = None
        config_path = Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"
        data_dir = Path(platformdirs.user_data_dir(APP_NAME))
        default_db = data_dir / "catalogsync.db"
        default_library = data_dir / "library"
    db = db or os.environ.get("CATALOGSYNC_DB")
    library = library or os.environ.get("CATALOGSYNC_LIBRARY")
    return (
        home_path,
        config_path,
        _absolute(db) if db else default_db,
        _absolute(library) if library else default_library,
    )


def _int(
    table: dict[str, Any], key: str, default: int, where: str | None = None, minimum: int = 0
) -> int:
    """An integer setting. config_schema.validate has checked the tables it knows; with
    ``where``, the value is checked here too (entries of arrays of tables)."""
    value = table.get(key, default)
    if where is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < minimum
    ):
        raise ConfigError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _transfer(table: dict[str, Any], defaults: TransferSettings) -> TransferSettings:
    return TransferSettings(
        workers=_int(table, "workers", defaults.workers),
        max_bytes_per_sec=_int(table, "max_bytes_per_sec", defaults.max_bytes_per_sec),
        max_attempts=_int(table, "max_attempts", defaults.max_attempts),
        reserve_mb=_int(table, "reserve_mb", defaults.reserve_mb),
        processes=(
            "auto"
            if table.get("processes", defaults.processes) == "auto"
            else _int(table, "processes", 1)
        ),
        stall_seconds=_int(table, "stall_seconds", defaults.stall_seconds),
    )


def _library(table: dict[str, Any], where: str) -> LibrarySettings:
    """The `[library]` table; the template is checked here, so a bad one never reaches a job."""
    defaults = LibrarySettings()
    values: dict[str, Any] = {}
    for key in ("template", "playlists"):
        value = table.get(key, getattr(defaults, key))
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
        values[key] = value
    for key in ("write_tags", "cover_art", "overwrite_tags"):
        value = table.get(key, getattr(defaults, key))
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        values[key] = value
    values["trash_days"] = _int(table, "trash_days", defaults.trash_days)
    settings = LibrarySettings(**values)
    from catalogsync.library.layout import check_library_settings

    check_library_settings(settings, where)
    return settings


def _parse_toml(config_path: Path) -> tuple[dict[str, Any], str]:
    raw = read_regular_file(config_path, "config file")
    if raw is None:
        return {}, ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{config_path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if found:
            reason = message[: found.start()].strip()
            raise ConfigError(
                f"{config_path}:{found.group(1)}: {reason} (column {found.group(2)})"
            ) from None
        raise ConfigError(f"{config_path}: {message}") from None
    except ValueError as exc:  # e.g. an integer literal too long to convert
        raise ConfigError(f"{config_path}: {str(exc).split('; ')[0]}") from None


def _library_root(data: dict[str, Any], config_path: Path) -> Path | None:
    """The root `config.toml` names: `[library] root`, else the legacy top-level `library`."""
    table = data.get("library")
    value = table.get("root") if isinstance(table, dict) else table
    if value is None:
        return None
    if not str(value).strip():
        raise ConfigError(f"{config_path}: the library root must be a folder path, got {value!r}")
    root = Path(str(value)).expanduser()
    return root if root.is_absolute() else (config_path.parent / root).resolve()


def load_settings(
    home: str | Path | None = None, db: str | Path | None = None, library: str | Path | None = None
) -> Settings:
    """Read `config.toml` (absent is fine); a bad file raises ConfigError naming file and line."""
    home_path, config_path, db_path, library_root = resolve_paths(home, db, library)
    data, text = _parse_toml(config_path)
    validate(data, text, config_path)
    where = str(config_path)
    # [library] (issue 11): `root` there, or the old top-level `library = "..."` string;
    # config_schema.validate has checked the types.
    raw_library = data.get("library", {})
    if isinstance(raw_library, str):
        raw_library = {"root": raw_library}
    library_settings = _library(raw_library, f"{where} [library]")
    library_override = bool(library or os.environ.get("CATALOGSYNC_LIBRARY"))
    configured = _library_root(data, config_path)
    if configured is not None and not library_override:
        library_root = configured
    runner = data.get("runner", {})
    settings = Settings(
        home=home_path,
        config_path=config_path,
        db_path=db_path,
        library_root=library_root,
        download_lane_concurrency=_int(runner, "download_lane_concurrency", 1),
        general_lane_concurrency=_int(runner, "general_lane_concurrency", 3),
        download=_transfer(data.get("download", {}), TransferSettings()),
        upload=_transfer(data.get("upload", {}), TransferSettings(workers=2, processes=1)),
        library=library_settings,
        library_override=library_override,
        library_configured=configured,
        tui=_tui(data.get("tui", {}), f"{where} [tui]"),
    )
    seen: set[str] = set()
    for index, raw in enumerate(data.get("sources", []), start=1):
        label = f"{where} [[sources]] #{index}"
        name = str(raw.get("name") or f"source-{index}")
        kind = raw.get("kind")
        if kind is None:
            raise ConfigError(f"{label}: kind must be one of {', '.join(SOURCE_KINDS)}")
        if name in seen:
            raise ConfigError(f"{label}: duplicate source name {name!r}")
        seen.add(name)
        path = raw.get("path")
        if kind in ("manual_file", "directory"):
            if not path:
                raise ConfigError(f'{label}: a {kind} source needs path = "..."')
            resolved = Path(str(path)).expanduser()
            if not resolved.is_absolute():
                resolved = (config_path.parent / resolved).resolve()
            path = str(resolved)
        settings.sources.append(
            SourceConfig(
                name=name,
                kind=kind,
                path=path,
                provider=raw.get("provider"),
                options=dict(raw.get("options", {})),
            )
        )
    settings.unattended = parse_unattended(data, where, [s.name for s in settings.sources])
    return settings


# -- unattended operation (issue 14): [[schedules]], [notify], [log], [platforms.NAME],
# [[download.limits]] ---------------------------------------------------------------------


@record
class ScheduleConfig:
    """One `[[schedules]]` entry: a cron line that submits a job."""

    name: str
    cron: str
    job: str
    playlists: str | list[int] | None = None  # "wanted", ids, or None (the job's default scope)
    sources: list[str] = field(default_factory=list)
    catch_up: bool = False
    priority: int = 100
    backend: str | None = None  # the upload target, for job types with an upload stage


@record
class NotifySettings:
    """`[notify]`: Apprise URLs, and which job outcomes send a message."""

    urls: list[str] = field(default_factory=list)
    urls_env: str | None = None
    on: list[str] = field(default_factory=lambda: ["failed", "completed_with_errors"])


@record
class LogSettings:
    """`[log]`: a log file for `catalogsync run` (max_bytes 0 = reopened after logrotate)."""

    file: str | None = None
    max_bytes: int = 0
    backups: int = 5


@record
class UnattendedSettings:
    schedules: list[ScheduleConfig] = field(default_factory=list)
    notify: NotifySettings = field(default_factory=NotifySettings)
    log: LogSettings = field(default_factory=LogSettings)
    platforms: dict[str, PlatformPacing] = field(default_factory=dict)
    download_limits: list[BandwidthWindow] = field(default_factory=list)


NOTIFY_OUTCOMES = ("completed", "completed_with_errors", "failed", "canceled")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _tables(value: Any, where: str, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {name} must be an array of tables ([[{name}]])")
    return [_table(v, f"{where} [[{name}]] #{i}") for i, v in enumerate(value, start=1)]


def _number(
    table: dict[str, Any], key: str, default: float, where: str, top: float | None = None
) -> float:
    value = table.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (top is not None and value > top)
    ):
        bound = f" and <= {top}" if top is not None else ""
        raise ConfigError(f"{where}: {key} must be a number >= 0{bound}, got {value!r}")
    return float(value)


def _strings(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings, got {value!r}")
    return list(value)


def _hours(text: Any, where: str) -> tuple[int, int]:
    import re

    match = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", str(text).strip())
    if not isinstance(text, str) or match is None:
        raise ConfigError(f'{where}: hours must look like "08:00-23:00", got {text!r}')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 * 60 + m1) % 1440 == (h2 * 60 + m2) % 1440:
        raise ConfigError(f"{where}: hours {text!r} is not a range of the day")
    return (h1 * 60 + m1) % 1440, (h2 * 60 + m2) % 1440


def parse_unattended(
    data: dict[str, Any], where: str, source_names: list[str] | None = None
) -> UnattendedSettings:
    """The unattended-operation tables; a bad value raises ConfigError naming table and key."""
    from catalogsync.ops.jobdefs import JOB_TYPES, job_has_stage

    result = UnattendedSettings()
    names: set[str] = set()
    for index, raw in enumerate(_tables(data.get("schedules", []), where, "schedules"), start=1):
        label = f"{where} [[schedules]] #{index}"
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or name in names:
            raise ConfigError(f"{label}: name must be a unique non-empty string, got {name!r}")
        names.add(name)
        label = f"{where} [[schedules]] {name!r}"
        cron = raw.get("cron")
        from catalogsync.cron import validate_cron

        problem = validate_cron(cron)
        if problem:
            raise ConfigError(f"{label}: cron {cron!r}: {problem}")
        job = raw.get("job")
        if job not in JOB_TYPES:
            raise ConfigError(f"{label}: job must be one of {', '.join(JOB_TYPES)}, got {job!r}")
        playlists = raw.get("playlists")
        if (
            playlists is not None
            and playlists != "wanted"
            and not (
                isinstance(playlists, list)
                and playlists
                and all(isinstance(p, int) and not isinstance(p, bool) for p in playlists)
            )
        ):
            raise ConfigError(f'{label}: playlists must be "wanted" or a list of playlist ids')
        sources = _strings(raw.get("sources", []), label, "sources")
        unknown = [s for s in sources if s not in (source_names or [])]
        if unknown:
            raise ConfigError(f"{label}: no source named {unknown[0]!r} in [[sources]]")
        if not isinstance(raw.get("catch_up", False), bool):
            raise ConfigError(f"{label}: catch_up must be true or false")
        backend = raw.get("backend")
        if backend is not None and (not isinstance(backend, str) or not backend):
            raise ConfigError(f"{label}: backend must be the name of a backend")
        if job_has_stage(str(job), "upload") and backend is None:
            raise ConfigError(f'{label}: a {job} job needs backend = "NAME" (its upload target)')
        result.schedules.append(
            ScheduleConfig(
                name=name,
                cron=str(cron),
                job=str(job),
                playlists=playlists,
                sources=sources,
                catch_up=bool(raw.get("catch_up", False)),
                priority=_int(raw, "priority", 100, label),
                backend=backend,
            )
        )
    notify = _table(data.get("notify", {}), f"{where} [notify]")
    label = f"{where} [notify]"
    outcomes = _strings(notify.get("on", NotifySettings().on), label, "on")
    for outcome in outcomes:
        if outcome not in NOTIFY_OUTCOMES:
            raise ConfigError(
                f"{label}: on: {outcome!r} is not one of {', '.join(NOTIFY_OUTCOMES)}"
            )
    urls_env = notify.get("urls_env")
    if urls_env is not None and (not isinstance(urls_env, str) or not urls_env):
        raise ConfigError(f"{label}: urls_env must be the name of an environment variable")
    result.notify = NotifySettings(
        urls=_strings(notify.get("urls", []), label, "urls"), urls_env=urls_env, on=outcomes
    )
    log_table = _table(data.get("log", {}), f"{where} [log]")
    log_file = log_table.get("file")
    if log_file is not None and (not isinstance(log_file, str) or not log_file):
        raise ConfigError(f"{where} [log]: file must be a path")
    if log_file:
        resolved = Path(log_file).expanduser()
        log_file = str(resolved if resolved.is_absolute() else (Path(where).parent / resolved))
    result.log = LogSettings(
        file=log_file,
        max_bytes=_int(log_table, "max_bytes", 0, f"{where} [log]"),
        backups=_int(log_table, "backups", 5, f"{where} [log]"),
    )
    for platform, raw in _table(data.get("platforms", {}), f"{where} [platforms]").items():
        label = f"{where} [platforms.{platform}]"
        raw = _table(raw, label)
        result.platforms[platform] = PlatformPacing(
            requests_per_minute=_number(raw, "requests_per_minute", 0.0, label),
            jitter=_number(raw, "jitter", 0.0, label, top=1.0),
            max_concurrent=_int(raw, "max_concurrent", 0, label),
            max_cooldown=_number(raw, "max_cooldown", 600.0, label),
        )
    download = data.get("download", {})
    raw_limits = download.get("limits", []) if isinstance(download, dict) else []
    for index, raw in enumerate(_tables(raw_limits, f"{where} [download]", "download.limits"), 1):
        label = f"{where} [[download.limits]] #{index}"
        start, end = _hours(raw.get("hours"), label)
        result.download_limits.append(
            BandwidthWindow(
                hours=str(raw["hours"]),
                start_minute=start,
                end_minute=end,
                max_bytes_per_sec=_int(raw, "max_bytes_per_sec", 0, label),
            )
        )
    return result


def save_library_root(settings: Settings, root: Path) -> bool:
    """Write ``root`` into `config.toml` (`init --library`); True if the file changed.

    An existing different root is not overwritten: moving a library is
    `catalogsync library relocate`, which also re-points the records.
    """
    import json

    data, text = _parse_toml(settings.config_path)
    current = _library_root(data, settings.config_path)
    if current is not None:
        if current.resolve() == root.resolve():
            return False
        raise ConfigError(
            f"{settings.config_path}: already sets the library to {current} "
            f"(to move it: catalogsync library relocate {root} [--move])"
        )
    value = json.dumps(str(root), ensure_ascii=False)  # a TOML basic string
    lines = text.splitlines(keepends=True)
    table = next(
        (i for i, line in enumerate(lines) if re.match(r"^\s*\[\s*library\s*\]", line)), None
    )
    if table is not None:
        lines.insert(table + 1, f"root = {value}\n")
    else:
        first = next(
            (i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines)
        )
        lines.insert(
            first, f"library = {value}\n\n" if first < len(lines) else f"library = {value}\n"
        )
    new_text = "".join(lines)
    settings.config_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = settings.config_path.with_name(settings.config_path.name + ".tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, settings.config_path)
    return True


def write_default_config(settings: Settings) -> bool:
    """Create `config.toml` with commented defaults if there is none; True if written."""
    if settings.config_path.exists():
        return False
    settings.config_path.parent.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(DEFAULT_CONFIG_TEXT, encoding="utf-8")
    return True
