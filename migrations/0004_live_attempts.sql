-- Attempts are recorded when they start and completed when they end, so
-- `tpswitch calls` taken during a call shows who is being rung. While an
-- attempt is in progress its sip_outcome is NULL. SQLite cannot relax a
-- NOT NULL in place, so the table is rebuilt with the same columns and ids.
-- (A later migration that adds columns to call_attempts must come after
-- this one.)

CREATE TABLE call_attempts_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id           INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    agent_user_id     TEXT    NOT NULL,
    started_at_ms     INTEGER NOT NULL,
    ring_ms           INTEGER,        -- from INVITE sent to final response / cancel
    sip_outcome       TEXT            -- NULL while the attempt is in progress
        CHECK (sip_outcome IN ('answered', 'busy', 'no-answer', 'rejected', 'failed')),
    sip_status        INTEGER,        -- final SIP status code, when one was received
    accept_latency_ms INTEGER,        -- from answer to the agent's accept digit
    hangup_cause      TEXT,
    hung_up_by        TEXT
);

INSERT INTO call_attempts_new (id, call_id, agent_user_id, started_at_ms, ring_ms, sip_outcome,
                               sip_status, accept_latency_ms, hangup_cause, hung_up_by)
    SELECT id, call_id, agent_user_id, started_at_ms, ring_ms, sip_outcome,
           sip_status, accept_latency_ms, hangup_cause, hung_up_by
    FROM call_attempts;

DROP TABLE call_attempts;
ALTER TABLE call_attempts_new RENAME TO call_attempts;
CREATE INDEX call_attempts_call ON call_attempts (call_id, id);

-- When the customer was bridged to an agent: the customer's wait is
-- answered_at -> bridged_at.
ALTER TABLE calls ADD COLUMN bridged_at_ms INTEGER;
