-- Feedback on answers. Each answer the bot posted (keyed by the event it answered), the
-- platform messages it went out as (a click on a message finds its answer), and one vote per
-- user and answer: a second click changes that row.
CREATE TABLE answers (
    event_id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    channel TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at REAL NOT NULL
) STRICT;
CREATE INDEX answers_by_channel ON answers (channel, model);
CREATE INDEX answers_by_age ON answers (created_at);

CREATE TABLE answer_messages (
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES answers (event_id) ON DELETE CASCADE,
    PRIMARY KEY (platform, message_id)
) STRICT;
CREATE INDEX answer_messages_by_answer ON answer_messages (event_id);

CREATE TABLE votes (
    event_id TEXT NOT NULL REFERENCES answers (event_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    value TEXT NOT NULL CHECK (value IN ('up', 'down')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (event_id, user_id)
) STRICT;
