"""The exact schema of a freshly migrated PostgreSQL database, as its catalog describes it:
the twin of ``EXPECTED_SCHEMA`` in ``test_storage_sqlite.py`` (``test_storage_postgres.py``
compares)."""

from __future__ import annotations

from typing import Any

SCHEMA_QUERIES = {
    "columns": "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text,"
    " is_identity::text FROM information_schema.columns WHERE table_schema = 'public'"
    " ORDER BY table_name, ordinal_position",
    "constraints": "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    # Every index is a btree in the public schema: left out, so each line stays readable.
    "indexes": "SELECT tablename::text, indexname::text,"
    " replace(replace(indexdef, ' USING btree', ''), 'public.', '') FROM pg_indexes"
    " WHERE schemaname = 'public' ORDER BY 1, 2",
}

EXPECTED_PG_SCHEMA: dict[str, list[tuple[Any, ...]]] = {
    "columns": [
        ("answer_messages", "platform", "text", "NO", "NO"),
        ("answer_messages", "message_id", "text", "NO", "NO"),
        ("answer_messages", "event_id", "text", "NO", "NO"),
        ("answers", "event_id", "text", "NO", "NO"),
        ("answers", "conversation", "text", "NO", "NO"),
        ("answers", "channel", "text", "NO", "NO"),
        ("answers", "model", "text", "NO", "NO"),
        ("answers", "created_at", "double precision", "NO", "NO"),
        ("channel_settings", "channel", "text", "NO", "NO"),
        ("channel_settings", "name", "text", "NO", "NO"),
        ("channel_settings", "value", "text", "NO", "NO"),
        ("channel_settings", "updated_at", "double precision", "NO", "NO"),
        ("conversation_files", "conversation_id", "bigint", "NO", "NO"),
        ("conversation_files", "sha256", "text", "NO", "NO"),
        ("conversation_files", "name", "text", "NO", "NO"),
        ("conversation_files", "added_at", "double precision", "NO", "NO"),
        ("conversation_locks", "conversation", "text", "NO", "NO"),
        ("conversation_locks", "owner", "text", "NO", "NO"),
        ("conversation_locks", "taken_at", "double precision", "NO", "NO"),
        ("conversations", "id", "bigint", "NO", "YES"),
        ("conversations", "key", "text", "NO", "NO"),
        ("conversations", "created_at", "double precision", "NO", "NO"),
        ("conversations", "updated_at", "double precision", "NO", "NO"),
        ("file_annotations", "conversation_id", "bigint", "NO", "NO"),
        ("file_annotations", "file_sha256", "text", "NO", "NO"),
        ("file_annotations", "annotations_json", "text", "NO", "NO"),
        ("file_annotations", "updated_at", "double precision", "NO", "NO"),
        ("files", "sha256", "text", "NO", "NO"),
        ("files", "name", "text", "NO", "NO"),
        ("files", "mime_type", "text", "NO", "NO"),
        ("files", "size", "bigint", "NO", "NO"),
        ("files", "data", "bytea", "NO", "NO"),
        ("files", "created_at", "double precision", "NO", "NO"),
        ("history_items", "conversation_id", "bigint", "NO", "NO"),
        ("history_items", "seq", "bigint", "NO", "NO"),
        ("history_items", "item_json", "text", "NO", "NO"),
        ("history_items", "tokens", "bigint", "NO", "NO"),
        ("history_items", "turn_start", "smallint", "NO", "NO"),
        ("instances", "id", "text", "NO", "NO"),
        ("instances", "started_at", "double precision", "NO", "NO"),
        ("instances", "renewed_at", "double precision", "NO", "NO"),
        ("instances", "expires_at", "double precision", "NO", "NO"),
        ("instances", "info", "text", "NO", "NO"),
        ("observed_messages", "id", "bigint", "NO", "YES"),
        ("observed_messages", "conversation", "text", "NO", "NO"),
        ("observed_messages", "message_id", "text", "NO", "NO"),
        ("observed_messages", "author", "text", "NO", "NO"),
        ("observed_messages", "text", "text", "NO", "NO"),
        ("observed_messages", "created_at", "double precision", "NO", "NO"),
        ("processed_events", "event_id", "text", "NO", "NO"),
        ("processed_events", "conversation", "text", "NO", "NO"),
        ("processed_events", "status", "text", "NO", "NO"),
        ("processed_events", "claimed_at", "double precision", "NO", "NO"),
        ("processed_events", "finished_at", "double precision", "YES", "NO"),
        ("processed_events", "address", "text", "YES", "NO"),
        ("processed_events", "owner", "text", "YES", "NO"),
        ("rate_hits", "key", "text", "NO", "NO"),
        ("rate_hits", "at", "double precision", "NO", "NO"),
        ("schema_migrations", "version", "integer", "NO", "NO"),
        ("schema_migrations", "name", "text", "NO", "NO"),
        ("schema_migrations", "applied_at", "double precision", "NO", "NO"),
        ("state", "key", "text", "NO", "NO"),
        ("state", "value", "text", "NO", "NO"),
        ("usage", "id", "bigint", "NO", "YES"),
        ("usage", "conversation", "text", "NO", "NO"),
        ("usage", "channel", "text", "NO", "NO"),
        ("usage", "workspace", "text", "YES", "NO"),
        ("usage", "user_id", "text", "NO", "NO"),
        ("usage", "model", "text", "NO", "NO"),
        ("usage", "input_tokens", "bigint", "NO", "NO"),
        ("usage", "output_tokens", "bigint", "NO", "NO"),
        ("usage", "cost_usd", "double precision", "YES", "NO"),
        ("usage", "created_at", "double precision", "NO", "NO"),
        ("usage", "reasoning_tokens", "bigint", "NO", "NO"),
        ("votes", "event_id", "text", "NO", "NO"),
        ("votes", "user_id", "text", "NO", "NO"),
        ("votes", "value", "text", "NO", "NO"),
        ("votes", "created_at", "double precision", "NO", "NO"),
        ("votes", "updated_at", "double precision", "NO", "NO"),
    ],
    "constraints": [
        (
            "answer_messages",
            "answer_messages_event_id_fkey",
            "FOREIGN KEY (event_id) REFERENCES answers(event_id) ON DELETE CASCADE",
        ),
        ("answer_messages", "answer_messages_pkey", "PRIMARY KEY (platform, message_id)"),
        ("answers", "answers_pkey", "PRIMARY KEY (event_id)"),
        ("channel_settings", "channel_settings_pkey", "PRIMARY KEY (channel, name)"),
        (
            "conversation_files",
            "conversation_files_conversation_id_fkey",
            "FOREIGN KEY (conversation_id) REFERENCES conversations(id) ON DELETE CASCADE",
        ),
        ("conversation_files", "conversation_files_pkey", "PRIMARY KEY (conversation_id, sha256)"),
        (
            "conversation_files",
            "conversation_files_sha256_fkey",
            "FOREIGN KEY (sha256) REFERENCES files(sha256)",
        ),
        ("conversation_locks", "conversation_locks_pkey", "PRIMARY KEY (conversation)"),
        ("conversations", "conversations_key_key", "UNIQUE (key)"),
        ("conversations", "conversations_pkey", "PRIMARY KEY (id)"),
        (
            "file_annotations",
            "file_annotations_conversation_id_fkey",
            "FOREIGN KEY (conversation_id) REFERENCES conversations(id) ON DELETE CASCADE",
        ),
        ("file_annotations", "file_annotations_pkey", "PRIMARY KEY (conversation_id, file_sha256)"),
        ("files", "files_pkey", "PRIMARY KEY (sha256)"),
        (
            "history_items",
            "history_items_conversation_id_fkey",
            "FOREIGN KEY (conversation_id) REFERENCES conversations(id) ON DELETE CASCADE",
        ),
        ("history_items", "history_items_pkey", "PRIMARY KEY (conversation_id, seq)"),
        ("history_items", "history_items_tokens_check", "CHECK ((tokens >= 0))"),
        (
            "history_items",
            "history_items_turn_start_check",
            "CHECK ((turn_start = ANY (ARRAY[0, 1])))",
        ),
        ("instances", "instances_pkey", "PRIMARY KEY (id)"),
        (
            "observed_messages",
            "observed_messages_conversation_message_id_key",
            "UNIQUE (conversation, message_id)",
        ),
        ("observed_messages", "observed_messages_pkey", "PRIMARY KEY (id)"),
        ("processed_events", "processed_events_pkey", "PRIMARY KEY (event_id)"),
        (
            "processed_events",
            "processed_events_status_check",
            "CHECK ((status = ANY (ARRAY['claimed'::text, 'answered'::text, 'failed'::text])))",
        ),
        ("schema_migrations", "schema_migrations_pkey", "PRIMARY KEY (version)"),
        ("state", "state_pkey", "PRIMARY KEY (key)"),
        ("usage", "usage_pkey", "PRIMARY KEY (id)"),
        (
            "votes",
            "votes_event_id_fkey",
            "FOREIGN KEY (event_id) REFERENCES answers(event_id) ON DELETE CASCADE",
        ),
        ("votes", "votes_pkey", "PRIMARY KEY (event_id, user_id)"),
        ("votes", "votes_value_check", "CHECK ((value = ANY (ARRAY['up'::text, 'down'::text])))"),
    ],
    "indexes": [
        (
            "answer_messages",
            "answer_messages_by_answer",
            "CREATE INDEX answer_messages_by_answer ON answer_messages (event_id)",
        ),
        (
            "answer_messages",
            "answer_messages_pkey",
            "CREATE UNIQUE INDEX answer_messages_pkey ON answer_messages (platform, message_id)",
        ),
        ("answers", "answers_by_age", "CREATE INDEX answers_by_age ON answers (created_at)"),
        (
            "answers",
            "answers_by_channel",
            "CREATE INDEX answers_by_channel ON answers (channel, model)",
        ),
        ("answers", "answers_pkey", "CREATE UNIQUE INDEX answers_pkey ON answers (event_id)"),
        (
            "channel_settings",
            "channel_settings_pkey",
            "CREATE UNIQUE INDEX channel_settings_pkey ON channel_settings (channel, name)",
        ),
        (
            "conversation_files",
            "conversation_files_by_file",
            "CREATE INDEX conversation_files_by_file ON conversation_files (sha256)",
        ),
        (
            "conversation_files",
            "conversation_files_pkey",
            "CREATE UNIQUE INDEX conversation_files_pkey ON conversation_files "
            "(conversation_id, sha256)",
        ),
        (
            "conversation_locks",
            "conversation_locks_by_owner",
            "CREATE INDEX conversation_locks_by_owner ON conversation_locks (owner)",
        ),
        (
            "conversation_locks",
            "conversation_locks_pkey",
            "CREATE UNIQUE INDEX conversation_locks_pkey ON conversation_locks (conversation)",
        ),
        (
            "conversations",
            "conversations_by_age",
            "CREATE INDEX conversations_by_age ON conversations (updated_at)",
        ),
        (
            "conversations",
            "conversations_key_key",
            "CREATE UNIQUE INDEX conversations_key_key ON conversations (key)",
        ),
        (
            "conversations",
            "conversations_pkey",
            "CREATE UNIQUE INDEX conversations_pkey ON conversations (id)",
        ),
        (
            "file_annotations",
            "file_annotations_pkey",
            "CREATE UNIQUE INDEX file_annotations_pkey ON file_annotations "
            "(conversation_id, file_sha256)",
        ),
        (
            "files",
            "files_pkey",
            "CREATE UNIQUE INDEX files_pkey ON files (sha256)",
        ),
        (
            "history_items",
            "history_items_pkey",
            "CREATE UNIQUE INDEX history_items_pkey ON history_items (conversation_id, seq)",
        ),
        ("instances", "instances_pkey", "CREATE UNIQUE INDEX instances_pkey ON instances (id)"),
        (
            "observed_messages",
            "observed_messages_by_age",
            "CREATE INDEX observed_messages_by_age ON observed_messages (created_at)",
        ),
        (
            "observed_messages",
            "observed_messages_conversation_message_id_key",
            "CREATE UNIQUE INDEX observed_messages_conversation_message_id_key"
            " ON observed_messages (conversation, message_id)",
        ),
        (
            "observed_messages",
            "observed_messages_pkey",
            "CREATE UNIQUE INDEX observed_messages_pkey ON observed_messages (id)",
        ),
        (
            "processed_events",
            "processed_events_by_conversation",
            "CREATE INDEX processed_events_by_conversation ON processed_events (conversation)",
        ),
        (
            "processed_events",
            "processed_events_finished",
            "CREATE INDEX processed_events_finished ON processed_events (finished_at) "
            "WHERE (finished_at IS NOT NULL)",
        ),
        (
            "processed_events",
            "processed_events_pkey",
            "CREATE UNIQUE INDEX processed_events_pkey ON processed_events (event_id)",
        ),
        (
            "processed_events",
            "processed_events_unfinished",
            "CREATE INDEX processed_events_unfinished ON processed_events (claimed_at) "
            "WHERE (status = 'claimed'::text)",
        ),
        ("rate_hits", "rate_hits_by_age", "CREATE INDEX rate_hits_by_age ON rate_hits (at)"),
        (
            "rate_hits",
            "rate_hits_by_key",
            "CREATE INDEX rate_hits_by_key ON rate_hits (key, at)",
        ),
        (
            "schema_migrations",
            "schema_migrations_pkey",
            "CREATE UNIQUE INDEX schema_migrations_pkey ON schema_migrations (version)",
        ),
        ("state", "state_pkey", "CREATE UNIQUE INDEX state_pkey ON state (key)"),
        (
            "usage",
            "usage_by_age",
            "CREATE INDEX usage_by_age ON usage (created_at)",
        ),
        (
            "usage",
            "usage_by_channel",
            "CREATE INDEX usage_by_channel ON usage (channel, created_at)",
        ),
        (
            "usage",
            "usage_by_conversation",
            "CREATE INDEX usage_by_conversation ON usage (conversation, created_at)",
        ),
        (
            "usage",
            "usage_by_user",
            "CREATE INDEX usage_by_user ON usage (user_id, created_at)",
        ),
        (
            "usage",
            "usage_by_workspace",
            "CREATE INDEX usage_by_workspace ON usage (workspace, created_at) WHERE "
            "(workspace IS NOT NULL)",
        ),
        ("usage", "usage_pkey", "CREATE UNIQUE INDEX usage_pkey ON usage (id)"),
        ("votes", "votes_pkey", "CREATE UNIQUE INDEX votes_pkey ON votes (event_id, user_id)"),
    ],
}
