-- The floor's "online today" reads every agent's history since midnight
-- (SqliteStore::history_since: WHERE at_ms >= ? ORDER BY at_ms, id).
-- Without an index on the time that is a scan of the whole table, which
-- only grows; with it, a range read of today's rows in order.

CREATE INDEX presence_history_at ON presence_history (at_ms, id);
