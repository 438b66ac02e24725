-- Timed presence: the current window of every online agent, plus an
-- append-only history of every change. Times are INTEGER milliseconds since
-- the Unix epoch, UTC: they compare and sort as numbers (expiry is
-- "window_end_ms <= now"), and need no date parsing in SQL.

-- One row per agent that is online right now. An agent with no row is offline.
CREATE TABLE presence_current (
    user_id         TEXT    PRIMARY KEY NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    call_id         TEXT,             -- SIP Call-ID of the log-in call, if any
    reason          TEXT    NOT NULL,
    CHECK (window_end_ms > window_start_ms)
);

-- Expiry scans by end time, at start-up and on every timer.
CREATE INDEX presence_current_end ON presence_current (window_end_ms);

-- Never updated or deleted by the switch: the audit trail of who was online when.
CREATE TABLE presence_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT    NOT NULL,
    kind            TEXT    NOT NULL
        CHECK (kind IN ('online', 'offline', 'expired', 'replaced', 'forced-offline')),
    at_ms           INTEGER NOT NULL, -- when it happened (for 'expired': the window's real end)
    window_start_ms INTEGER,          -- the window concerned; NULL for 'offline' when not online
    window_end_ms   INTEGER,
    call_id         TEXT,
    reason          TEXT    NOT NULL
);

CREATE INDEX presence_history_user ON presence_history (user_id, id);
