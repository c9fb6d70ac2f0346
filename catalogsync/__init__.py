"""catalogsync: keep a NAS music library in step with online playlists."""

__version__ = "0.1.0"
