"""The sync stage: each playlist in scope -> its tracks in songs / playlist_songs, with drift."""

from __future__ import annotations

from catalogsync.errors import CatalogsyncError, PlaylistFormatError
from catalogsync.providers import registry

from ..jobdefs import STAGE_DEFS
from ..models import JobItem
from .base import StageExecutor, Succeeded


class SyncStageExecutor(StageExecutor):
    """Each playlist in scope -> its tracks in songs / playlist_songs, with drift."""

    stage_type = "sync"
    item_type = STAGE_DEFS["sync"].item_type

    def worker_count(self) -> int:
        return 2

    def max_attempts(self) -> int:
        return 2

    def plan(self) -> None:
        ids = self._scope_playlist_ids(wanted_only=False)
        playlists = {p["id"]: p for p in self.catalog.list_playlists(ids=ids)}
        self.repository.create_items(
            self.stage.id,
            [
                {
                    "item_type": self.item_type,
                    "item_key": f"playlist:{pid}",
                    "playlist_id": pid,
                    "payload": {"display_text": playlists[pid]["name"]},
                }
                for pid in ids
                if pid in playlists
            ],
        )

    def process_item(self, item: JobItem, worker_name: str) -> Succeeded:
        playlist = self.catalog.get_playlist(int(item.playlist_id or 0))
        if playlist is None:
            raise CatalogsyncError(f"playlist {item.playlist_id} no longer exists")
        where = f"playlist {playlist['id']} ({playlist['name']})"
        try:
            provider = registry.get_provider(playlist["platform"])
            content = provider.fetch_playlist(playlist["ref"] or playlist["remote_id"])
        except PlaylistFormatError as exc:
            self.catalog.set_playlist_error(playlist["id"], str(exc))
            raise
        except CatalogsyncError as exc:
            self.catalog.set_playlist_error(playlist["id"], str(exc))
            raise CatalogsyncError(f"{where}: {exc}") from None
        result = self.catalog.sync_playlist_tracks(
            playlist["id"], playlist["platform"], content.tracks
        )
        return Succeeded({"songs": result.total, "added": result.added, "removed": result.removed})
