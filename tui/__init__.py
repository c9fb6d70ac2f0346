"""The Textual task center: one client of the catalogsync engine."""
