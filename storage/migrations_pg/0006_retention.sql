-- BOT_RETENTION_DAYS: the periodic job finds what is older than its cutoff through these
-- indexes instead of scanning tables that grow with every message.
CREATE INDEX conversations_by_age ON conversations (updated_at);
CREATE INDEX usage_by_age ON usage (created_at);
-- Only finished events are ever expired; unfinished ones wait for a restart to tell their users.
CREATE INDEX processed_events_finished ON processed_events (finished_at)
    WHERE finished_at IS NOT NULL;
