-- Where to say something about an event later (an adapter's opaque JSON: channel, thread,
-- message), so that a turn cut by a crash is told after the restart instead of dropped.
ALTER TABLE processed_events ADD COLUMN address TEXT;

-- Daily budgets per workspace sum a day of usage rows; read them through an index.
CREATE INDEX usage_by_workspace ON usage (workspace, created_at) WHERE workspace IS NOT NULL;
