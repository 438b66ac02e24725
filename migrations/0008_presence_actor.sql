-- Who changed an agent's presence: 'agent' (their own log-in call),
-- 'switch' (expiry, missed calls) or the name of the API token a
-- supervisor or admin used. And two new kinds, for a supervisor moving the
-- end of an open window: 'extended' (later) and 'shortened' (earlier); the
-- window's start stays, so the history still says when the agent came
-- online.
--
-- SQLite cannot change a CHECK in place, so the table is rebuilt with the
-- same ids (as 0004 does for call_attempts). Rows written before this
-- migration get the actor their kind implies.

CREATE TABLE presence_history_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT    NOT NULL,
    kind            TEXT    NOT NULL
        CHECK (kind IN ('online', 'offline', 'expired', 'replaced', 'forced-offline',
                        'extended', 'shortened')),
    at_ms           INTEGER NOT NULL, -- when it happened (for 'expired': the window's real end)
    window_start_ms INTEGER,          -- the window concerned ('extended'/'shortened': the new one)
    window_end_ms   INTEGER,
    call_id         TEXT,
    reason          TEXT    NOT NULL,
    actor           TEXT    NOT NULL
);

INSERT INTO presence_history_new (id, user_id, kind, at_ms, window_start_ms, window_end_ms,
                                  call_id, reason, actor)
    SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason,
           CASE WHEN kind IN ('expired', 'forced-offline') THEN 'switch' ELSE 'agent' END
    FROM presence_history;

DROP TABLE presence_history;
ALTER TABLE presence_history_new RENAME TO presence_history;
CREATE INDEX presence_history_user ON presence_history (user_id, id);
