-- Log-in calls (the timed-presence menu), one row written when the call
-- ends. Times are INTEGER milliseconds since the Unix epoch, UTC.

CREATE TABLE login_calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id       TEXT    NOT NULL,   -- SIP Call-ID of the caller's leg
    caller        TEXT    NOT NULL,   -- the caller ID as received ('' when withheld)
    agent_user_id TEXT,               -- who the caller was identified as, when known
    outcome       TEXT    NOT NULL
        CHECK (outcome IN ('online', 'offline', 'invalid', 'unknown-caller', 'withheld',
                           'hung-up', 'pin-failed', 'store-failed')),
    hours         INTEGER,            -- the hours chosen, for 'online'
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER NOT NULL
);

CREATE INDEX login_calls_started ON login_calls (started_at_ms);
