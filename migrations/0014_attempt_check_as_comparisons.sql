-- call_attempts' outcome CHECK as comparisons, as 0013 does for the log-in
-- tables (issue 15): an `IN` list of more than two constants builds a
-- temporary b-tree each time an attempt is written or completed. Same
-- columns (0004's, and 0006's sip_call_id), same ids; rebuilt as 0004 did.

CREATE TABLE call_attempts_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id           INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    agent_user_id     TEXT    NOT NULL,
    started_at_ms     INTEGER NOT NULL,
    ring_ms           INTEGER,        -- from INVITE sent to final response / cancel
    sip_outcome       TEXT            -- NULL while the attempt is in progress
        CHECK (sip_outcome = 'answered' OR sip_outcome = 'busy' OR sip_outcome = 'no-answer'
               OR sip_outcome = 'rejected' OR sip_outcome = 'failed'),
    sip_status        INTEGER,        -- final SIP status code, when one was received
    accept_latency_ms INTEGER,        -- from answer to the agent's accept digit
    hangup_cause      TEXT,
    hung_up_by        TEXT,
    sip_call_id       TEXT
);

INSERT INTO call_attempts_new (id, call_id, agent_user_id, started_at_ms, ring_ms, sip_outcome,
                               sip_status, accept_latency_ms, hangup_cause, hung_up_by,
                               sip_call_id)
    SELECT id, call_id, agent_user_id, started_at_ms, ring_ms, sip_outcome,
           sip_status, accept_latency_ms, hangup_cause, hung_up_by, sip_call_id
    FROM call_attempts;

DROP TABLE call_attempts;
ALTER TABLE call_attempts_new RENAME TO call_attempts;
CREATE INDEX call_attempts_call ON call_attempts (call_id, id);
