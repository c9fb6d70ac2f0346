"""The collect stage: each configured source -> playlists rows (upsert, never duplicates)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import SourceConfig
from catalogsync.errors import CatalogsyncError
from catalogsync.providers import registry
from catalogsync.providers.base import PlaylistRef

from ..jobdefs import STAGE_DEFS
from ..models import JobItem
from .base import StageExecutor, Succeeded

MANIFEST_SUFFIXES = (".m3u", ".m3u8", ".pls", ".json", ".csv")


class CollectStageExecutor(StageExecutor):
    """Sources -> playlists rows (upsert, never duplicates)."""

    stage_type = "collect"
    item_type = STAGE_DEFS["collect"].item_type

    def _sources(self) -> list[SourceConfig]:
        if self.settings is None:
            return []
        if self.job.sources:
            return [self.settings.source(name) for name in self.job.sources]
        return list(self.settings.sources)

    def plan(self) -> None:
        sources = self._sources()
        if not sources:
            self.repository.add_event(
                self.job.id,
                "collect_empty",
                "no [[sources]] in config.toml: collect has nothing to do "
                "(playlists added with `playlists add` are still synced)",
            )
            return
        self.repository.create_items(
            self.stage.id,
            [
                {
                    "item_type": self.item_type,
                    "item_key": f"source:{s.name}",
                    "payload": {"source": asdict(s), "display_text": f"source {s.name}"},
                }
                for s in sources
            ],
        )

    def process_item(self, item: JobItem, worker_name: str) -> Succeeded:
        source = SourceConfig(**item.payload["source"])
        found, errors = collect_source(self.catalog, source)
        if errors:
            raise CatalogsyncError(
                f"source {source.name}: {len(errors)} of {found + len(errors)} playlists "
                f"could not be read; first: {errors[0]}"
            )
        return Succeeded({"playlists": found})


def collect_source(catalog: CatalogRepository, source: SourceConfig) -> tuple[int, list[str]]:
    """Upsert every playlist a source lists; returns (count found, one line per failure)."""
    found, errors = _source_playlists(source)
    pool_kind = "playlist_square" if source.kind == "playlist_square" else "manual_file"
    for playlist in found:
        catalog.upsert_playlist(
            platform=playlist.platform,
            remote_id=playlist.remote_id,
            name=playlist.name,
            ref=playlist.ref,
            pool_kind=pool_kind,
            source_name=source.name,
        )
    return len(found), errors


def _source_playlists(source: SourceConfig) -> tuple[list[PlaylistRef], list[str]]:
    """The playlists a source names, and a `file:line: reason` per entry that failed."""
    if source.kind == "playlist_square":
        provider = registry.get_provider(source.provider or "")
        return provider.list_playlists(source.options), []
    refs: list[tuple[str, str]] = []  # (ref, where it came from for error messages)
    if source.kind == "manual_file":
        list_path = Path(source.path or "")
        try:
            lines = list_path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogsyncError(f"{list_path}: cannot read source list: {exc}") from None
        for number, line in enumerate(lines, start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if "://" not in entry and not Path(entry).is_absolute():
                entry = str((list_path.parent / entry).resolve())
            refs.append((entry, f"{list_path}:{number}"))
    else:
        folder = Path(source.path or "")
        if not folder.is_dir():
            raise CatalogsyncError(f"{folder}: source folder does not exist")
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
                refs.append((str(path.resolve()), str(path)))
    found: list[PlaylistRef] = []
    errors: list[str] = []
    for ref, where in refs:
        try:
            found.append(registry.provider_for_ref(ref).describe(ref))
        except CatalogsyncError as exc:
            errors.append(f"{where}: {exc}")
    return found, errors
