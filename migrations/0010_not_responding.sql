-- "Not responding" (issue 14): after `max_no_answer` missed offers in a
-- row the switch closes the agent's window and marks them not responding
-- until they call the log-in line or a supervisor sets them online or
-- offline. The mark is a row here, kept across restarts (unlike
-- agent_state, no call is needed for it to hold) and read by every node of
-- a shared store. No row = not marked.
CREATE TABLE agent_not_responding (
    user_id  TEXT    PRIMARY KEY NOT NULL,
    since_ms INTEGER NOT NULL,       -- UTC milliseconds since the epoch
    reason   TEXT    NOT NULL        -- e.g. "missed 3 offers in a row (max_no_answer)"
);

-- Two history kinds: 'not-responding' (the window closed for missed
-- offers, the mark set) and 'responding' (the mark cleared: the agent
-- called in, or a supervisor acted). SQLite cannot change a CHECK in
-- place, so the table is rebuilt with the same ids, as 0008 did.
CREATE TABLE presence_history_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT    NOT NULL,
    kind            TEXT    NOT NULL
        CHECK (kind IN ('online', 'offline', 'expired', 'replaced', 'forced-offline',
                        'extended', 'shortened', 'not-responding', 'responding')),
    at_ms           INTEGER NOT NULL,
    window_start_ms INTEGER,
    window_end_ms   INTEGER,
    call_id         TEXT,
    reason          TEXT    NOT NULL,
    actor           TEXT    NOT NULL
);

INSERT INTO presence_history_new (id, user_id, kind, at_ms, window_start_ms, window_end_ms,
                                  call_id, reason, actor)
    SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, actor
    FROM presence_history;

DROP TABLE presence_history;
ALTER TABLE presence_history_new RENAME TO presence_history;
CREATE INDEX presence_history_user ON presence_history (user_id, id);
CREATE INDEX presence_history_at ON presence_history (at_ms, id);
