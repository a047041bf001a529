-- Of a turn's output tokens, those the model spent reasoning (a share of output_tokens, not
-- added to it: OpenRouter counts and bills reasoning as output). /usage shows the share.
ALTER TABLE usage ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
