"""The job system's SQL, one module per aggregate over one shared SQLite store.

``catalogsync.ops.repository.OpsRepository`` composes them; callers use that class.
"""
