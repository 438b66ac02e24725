-- PostgreSQL twin of ../0009_history_at.sql: the floor's "online today"
-- reads the history since midnight through this index.
CREATE INDEX presence_history_at ON presence_history (at_ms, id);
