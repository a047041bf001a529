"""PostgreSQL's numbered migrations (``NNNN_name.sql``), applied by ``storage.pg_migrate``.

Each is the twin of the SQLite migration with the same number and name, so a schema version
means the same on both databases: a new migration comes as a pair. Types map as SQLite's
STRICT ones hold: INTEGER -> BIGINT (64-bit, as SQLite's), REAL -> DOUBLE PRECISION (unix
seconds from time.time()), BLOB -> BYTEA, an ``INTEGER PRIMARY KEY`` -> an identity column.
JSON stays TEXT: JSONB would reorder keys and refuses the ``\\ud800`` escapes a lone surrogate
is stored as, and the store never queries inside it.
"""
