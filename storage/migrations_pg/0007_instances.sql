-- Several instances on one database. Each holds a lease it renews; an instance whose lease has
-- expired is dead: other instances take over the claims and conversation locks it held.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    started_at DOUBLE PRECISION NOT NULL,
    renewed_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    info TEXT NOT NULL
);

-- The instance running the claimed turn (NULL: claimed before instances had leases).
ALTER TABLE processed_events ADD COLUMN owner TEXT;

-- One row while a turn of the conversation runs; its owner's lease keeps it.
CREATE TABLE conversation_locks (
    conversation TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX conversation_locks_by_owner ON conversation_locks (owner);

-- The per-user rate limit's hits of the last window, shared by every instance.
CREATE TABLE rate_hits (
    key TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_hits_by_key ON rate_hits (key, at);
CREATE INDEX rate_hits_by_age ON rate_hits (at);
