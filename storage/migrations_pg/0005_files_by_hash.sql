-- A file's bytes are shared by hash and deleted with the last conversation that links them
-- (/reset, retention): "does another conversation still link it?" is asked through this.
CREATE INDEX conversation_files_by_file ON conversation_files (sha256);
