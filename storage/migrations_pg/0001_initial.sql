-- The initial schema (the twin of SQLite's 0001). Timestamps are unix seconds from time.time().

CREATE TABLE conversations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

-- (conversation_id, seq) is the index load_history walks backwards from the newest item.
CREATE TABLE history_items (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    item_json TEXT NOT NULL,
    tokens BIGINT NOT NULL CHECK (tokens >= 0),
    turn_start SMALLINT NOT NULL CHECK (turn_start IN (0, 1)),
    PRIMARY KEY (conversation_id, seq)
);

-- The bytes of a file, stored once per content hash whatever the conversation.
CREATE TABLE files (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    data BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE conversation_files (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL REFERENCES files (sha256),
    name TEXT NOT NULL,
    added_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (conversation_id, sha256)
);

CREATE TABLE file_annotations (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    file_sha256 TEXT NOT NULL,
    annotations_json TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (conversation_id, file_sha256)
);

CREATE TABLE processed_events (
    event_id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'answered', 'failed')),
    claimed_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);

-- Only the few unfinished events are indexed; the table itself grows with every event.
CREATE INDEX processed_events_unfinished ON processed_events (claimed_at)
    WHERE status = 'claimed';

CREATE TABLE channel_settings (
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (channel, name)
);

-- Keyed by the conversation's string, not a foreign key: usage outlives /reset.
CREATE TABLE usage (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation TEXT NOT NULL,
    channel TEXT NOT NULL,
    workspace TEXT,
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX usage_by_user ON usage (user_id, created_at);
CREATE INDEX usage_by_channel ON usage (channel, created_at);
CREATE INDEX usage_by_conversation ON usage (conversation, created_at);

CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
