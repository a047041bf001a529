-- "Is the bot part of this conversation?" is asked for every unaddressed message in a channel
-- thread (Slack follow-ups without a mention): answer it through an index, not a table scan.
CREATE INDEX processed_events_by_conversation ON processed_events (conversation);
