-- PostgreSQL twin of ../0004_live_attempts.sql: an attempt in progress has
-- no sip_outcome yet. PostgreSQL relaxes NOT NULL in place (the CHECK
-- passes on NULL), where SQLite had to rebuild the table.
ALTER TABLE call_attempts ALTER COLUMN sip_outcome DROP NOT NULL;

ALTER TABLE calls ADD COLUMN bridged_at_ms BIGINT;
