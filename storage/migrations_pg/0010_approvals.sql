-- Tool calls waiting for a person's approval (MCP tools with require_approval). The paused turn
-- writes the row and waits for its decision; a click on any instance decides it, once: the
-- decision is set only while it is still empty, before expires_at, and while the instance
-- that waits (owner) holds its lease. Rows are swept a day after they were asked.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    requester TEXT NOT NULL,
    tool TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    decision TEXT CHECK (decision IN ('approved', 'denied', 'expired')),
    decided_by TEXT,
    decided_at DOUBLE PRECISION
);
CREATE INDEX approvals_by_age ON approvals (created_at);
