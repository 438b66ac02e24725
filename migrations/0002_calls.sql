-- Customer calls and every attempt to reach an agent for them. Times are
-- INTEGER milliseconds since the Unix epoch, UTC (see 0001_presence.sql).

CREATE TABLE calls (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- SIP Call-ID of the customer leg. Not UNIQUE: it comes from the trunk,
    -- and a duplicate must not make us lose the record of a real call.
    call_id         TEXT    NOT NULL,
    flow            TEXT    NOT NULL,
    customer_number TEXT    NOT NULL,
    contact_point   TEXT    NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    answered_at_ms  INTEGER,
    ended_at_ms     INTEGER,
    outcome         TEXT,             -- set when the call ends, e.g. 'bridged', 'abandoned'
    hung_up_by      TEXT              -- 'customer', 'agent' or 'switch'
);

CREATE INDEX calls_started ON calls (started_at_ms);
CREATE INDEX calls_call_id ON calls (call_id);

CREATE TABLE call_attempts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id           INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    agent_user_id     TEXT    NOT NULL,
    started_at_ms     INTEGER NOT NULL,
    ring_ms           INTEGER,        -- from INVITE sent to final response / cancel
    sip_outcome       TEXT    NOT NULL
        CHECK (sip_outcome IN ('answered', 'busy', 'no-answer', 'rejected', 'failed')),
    sip_status        INTEGER,        -- final SIP status code, when one was received
    accept_latency_ms INTEGER,        -- from answer to the agent's accept digit
    hangup_cause      TEXT,
    hung_up_by        TEXT
);

CREATE INDEX call_attempts_call ON call_attempts (call_id, id);
