"""A DataTable whose rows are keyed and updated in place, with a narrow column layout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

Cells = dict[str, Text]


SAME = -1  # a tiny layout's width: the same as the narrow one


@dataclass(frozen=True)
class ColumnSpec:
    """A column: key, header, widths wide / narrow / tiny (None: hidden in that layout)."""

    key: str
    label: str
    width: int
    narrow_width: int | None = None
    tiny_width: int | None = SAME

    def width_in(self, layout: str) -> int | None:
        """The column's width in a layout (`wide`, `narrow`, `tiny`), None when hidden."""
        if layout == "wide":
            return self.width
        if layout == "tiny" and self.tiny_width != SAME:
            return self.tiny_width
        return self.narrow_width

    def width_for(self, narrow: bool) -> int:
        """The column's width in the wide or the narrow layout."""
        return self.narrow_width if narrow and self.narrow_width is not None else self.width


def fit(text: Text, width: int) -> Text:
    """The cell cut to its column with an ellipsis (DataTable would crop it silently)."""
    if text.cell_len <= width:
        return text
    cut = text.copy()
    cut.truncate(width, overflow="ellipsis")
    return cut


class KeyedTable(DataTable[Text]):
    """Rows keyed by an id: refreshes add, update and remove only what changed.

    The ``KEY_COLUMN`` must hold the row key as its text and be shown in every
    layout, so rows can be put in order with ``sort`` without clearing the table.
    """

    COLUMNS: ClassVar[tuple[ColumnSpec, ...]] = ()
    KEY_COLUMN: ClassVar[str] = "id"
    NARROW_BELOW: ClassVar[int] = 100
    TINY_BELOW: ClassVar[int] = 76
    # What k9s, htop and lazygit users type: j/k, g/G, Home/End move the cursor.
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g,home", "scroll_top", "First row", show=False, id="table.first"),
        Binding("G,end", "scroll_bottom", "Last row", show=False, id="table.last"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.narrow: bool | None = None
        self.layout_name: str | None = None
        self._rows: list[tuple[str, Cells]] = []
        self._shown: dict[str, dict[str, tuple[str, str]]] = {}
        self._labels: dict[str, str] = {}

    # -- layout -----------------------------------------------------------

    def on_mount(self) -> None:
        """Columns for the terminal's width at once, so the first frame has the rows.

        The first Resize comes after the first frame (the rows showed one frame late);
        it rebuilds the columns only if the table is narrower than guessed."""
        self._choose_layout(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        """Switch between the wide, narrow and tiny sets of columns."""
        self._choose_layout(event.size.width)

    def _choose_layout(self, width: int) -> None:
        layout = (
            "wide"
            if width >= self.NARROW_BELOW
            else ("narrow" if width >= self.TINY_BELOW else "tiny")
        )
        if layout != self.layout_name:
            self.layout_name = layout
            self.narrow = layout != "wide"
            self._build_columns()

    def visible_columns(self) -> list[ColumnSpec]:
        """Columns shown in the current layout."""
        layout = self.layout_name or "wide"
        return [c for c in self.COLUMNS if c.width_in(layout) is not None]

    def _widths(self) -> dict[str, int]:
        layout = self.layout_name or "wide"
        return {c.key: int(c.width_in(layout) or 0) for c in self.visible_columns()}

    def column_label(self, key: str) -> str:
        """The header of a column (a subclass may mark the sorted one)."""
        return self._labels.get(key) or next(c.label for c in self.COLUMNS if c.key == key)

    def set_column_label(self, key: str, label: str) -> None:
        """Change a column's header in place (the sort marker)."""
        self._labels[key] = label
        column = self.columns.get(key)  # type: ignore[call-overload]
        if column is not None:
            column.label = Text(label)
            self.refresh()

    def _build_columns(self) -> None:
        # A layout change (terminal resize) is the one time the table is rebuilt.
        key = self.highlighted_key
        self.clear(columns=True)
        self._shown.clear()
        for name, width in self._widths().items():
            self.add_column(self.column_label(name), width=width, key=name)
        self._apply(self._rows, keep=key)

    # -- rows -------------------------------------------------------------

    @property
    def highlighted_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        try:
            return self.ordered_rows[self.cursor_row].key.value
        except IndexError:
            return None

    def row_keys(self) -> list[str]:
        """Keys of the rows shown, top to bottom."""
        return [str(row.key.value) for row in self.ordered_rows]

    def sync_rows(self, rows: Sequence[tuple[str, Cells]]) -> None:
        """Show exactly ``rows`` in this order, touching only cells that changed."""
        self._rows = list(rows)
        if self.columns:
            self._apply(self._rows, keep=self.highlighted_key)

    def highlight(self, key: str) -> bool:
        """Move the cursor to the row with ``key``; False when it is not shown."""
        try:
            index = self.get_row_index(key)
        except RowDoesNotExist:
            return False
        self.move_cursor(row=index)
        return True

    def _update_row(self, key: str, changed: Cells) -> None:
        """Set a row's changed cells and repaint that row only.

        ``DataTable.update_cell`` bumps a counter that is part of every render-cache
        key, so one job's new speed re-rendered every visible cell of the table each
        second; here only that row's cache entries go. Falls back to ``update_cell``
        if the table's internals are not the ones this was written against.
        """
        try:
            data = self._data[key]  # type: ignore[index]
            # Textual's private caches, keyed by tuples whose shapes differ per cache.
            caches: tuple[Any, ...] = (self._cell_render_cache, self._row_render_cache)
            by_index: Any = self._row_renderable_cache
            index = self.get_row_index(key)
            for column, value in changed.items():
                data[column] = value  # type: ignore[index]
            for cache in caches:
                for cache_key in [k for k in cache.keys() if k[0] == key]:  # noqa: SIM118
                    cache.discard(cache_key)
            for cache_key in [k for k in by_index.keys() if k[1] == index]:  # noqa: SIM118
                by_index.discard(cache_key)
            self._line_cache.clear()
            self.refresh_row(index)
        except (AttributeError, KeyError, TypeError, IndexError):
            for column, value in changed.items():
                self.update_cell(key, column, value)

    def _apply(self, rows: list[tuple[str, Cells]], *, keep: str | None) -> None:
        keys = [key for key, _ in rows]
        wanted = set(keys)
        for key in [k for k in self._shown if k not in wanted]:
            self.remove_row(key)
            del self._shown[key]
        widths = self._widths()
        columns = list(widths)
        for key, full_cells in rows:
            cells = {c: fit(full_cells[c], widths[c]) for c in columns}
            signature = {c: (cells[c].plain, str(cells[c].style)) for c in columns}
            shown = self._shown.get(key)
            if shown is None:
                self.add_row(*(cells[c] for c in columns), key=key)
            else:
                changed = {c: cells[c] for c in columns if shown.get(c) != signature[c]}
                if changed:
                    self._update_row(key, changed)
            self._shown[key] = signature
        if self.row_keys() != keys:
            position = {key: n for n, key in enumerate(keys)}
            self.sort(self.KEY_COLUMN, key=lambda cell: position.get(cell.plain, len(position)))
        if keep is not None and keep in wanted:
            index = self.get_row_index(keep)
            if index != self.cursor_row:
                self.move_cursor(row=index, scroll=True)
