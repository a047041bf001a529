-- Messages seen in channel threads that were not addressed to the bot, so that a later mention
-- in the middle of a thread can see what was said before it (Slack's own history API is too
-- rate-limited to re-read threads). Kept briefly and few per conversation; a completed turn
-- takes them into its history and deletes them.
CREATE TABLE observed_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation TEXT NOT NULL,
    message_id TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (conversation, message_id)
);

CREATE INDEX observed_messages_by_age ON observed_messages (created_at);
