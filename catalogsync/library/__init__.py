"""The library on disk: layout (path templates), tags, playlist files, verify, reorganize."""
