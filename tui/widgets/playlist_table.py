"""The playlist picker's table: a selection marker column plus the read model's fields."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.text import Text

from catalogsync.ops.readmodels import PlaylistRow
from tui.formatting import plain, relative_time
from tui.widgets.keyed_table import Cells, ColumnSpec, KeyedTable

HINT_STYLES = {"Idle": "dim"}


def selection_marker(position: int | None) -> Text:
    """`[1]`, `[2]`... for selected rows (the order jobs will follow), `[ ]` otherwise."""
    if position is None:
        return Text("[ ]", style="dim")
    return Text(f"[{position}]", style="bold reverse")


def playlist_cells(row: PlaylistRow, position: int | None) -> Cells:
    """The cells of one playlist row."""
    hint = row.hint or "-"
    if hint.startswith("Running"):
        hint_style = "green"
    elif hint.startswith("0 songs"):
        hint_style = "yellow"
    else:
        hint_style = HINT_STYLES.get(hint, "")
    return {
        "sel": selection_marker(position),
        "id": Text(str(row.id), style="bold"),
        "name": plain(row.name),
        "platform": plain(row.platform),
        "songs": Text(str(row.song_count or 0), justify="right"),
        "wanted": Text("yes", style="green") if row.wanted else Text("no", style="dim"),
        "synced": plain(relative_time(row.last_synced_at)),
        "drift": plain(row.drift),
        "hint": Text(hint, style=hint_style),
    }


def playlist_matches(row: PlaylistRow, text: str) -> bool:
    """Whether the filter text occurs in the playlist's name, platform, id or hint."""
    needle = text.strip().lower()
    if not needle:
        return True
    haystack = " ".join(str(v or "") for v in (row.id, row.name, row.platform, row.hint))
    return needle in haystack.lower()


class PlaylistTable(KeyedTable):
    """Every playlist; space marks the highlighted one for a bulk action."""

    COLUMNS: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("sel", "Sel", 4, 4),
        ColumnSpec("id", "ID", 4, 3),
        ColumnSpec("name", "Playlist", 24, 18),
        ColumnSpec("platform", "Platform", 9, None),
        ColumnSpec("songs", "Songs", 5, 5),
        ColumnSpec("wanted", "Wanted", 6, 6),
        ColumnSpec("synced", "Last Synced", 11, None),
        ColumnSpec("drift", "Drift", 9, 9),
        ColumnSpec("hint", "Hint", 25, 18),
    )
    NARROW_BELOW: ClassVar[int] = 110

    def show_playlists(self, rows: Iterable[PlaylistRow], selected: Sequence[int]) -> None:
        """Show these playlists, marking the selected ones with their place in the order."""
        order = {playlist_id: n for n, playlist_id in enumerate(selected, start=1)}
        self.sync_rows([(str(row.id), playlist_cells(row, order.get(row.id))) for row in rows])

    @property
    def highlighted_playlist_id(self) -> int | None:
        """The id of the playlist under the cursor."""
        key = self.highlighted_key
        return int(key) if key is not None else None
