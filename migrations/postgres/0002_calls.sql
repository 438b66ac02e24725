-- PostgreSQL twin of ../0002_calls.sql.

CREATE TABLE calls (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id         TEXT    NOT NULL,
    flow            TEXT    NOT NULL,
    customer_number TEXT    NOT NULL,
    contact_point   TEXT    NOT NULL,
    started_at_ms   BIGINT  NOT NULL,
    answered_at_ms  BIGINT,
    ended_at_ms     BIGINT,
    outcome         TEXT,
    hung_up_by      TEXT
);

CREATE INDEX calls_started ON calls (started_at_ms);
CREATE INDEX calls_call_id ON calls (call_id);

CREATE TABLE call_attempts (
    id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id           BIGINT  NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    agent_user_id     TEXT    NOT NULL,
    started_at_ms     BIGINT  NOT NULL,
    ring_ms           BIGINT,
    sip_outcome       TEXT    NOT NULL
        CHECK (sip_outcome IN ('answered', 'busy', 'no-answer', 'rejected', 'failed')),
    sip_status        BIGINT,
    accept_latency_ms BIGINT,
    hangup_cause      TEXT,
    hung_up_by        TEXT
);

CREATE INDEX call_attempts_call ON call_attempts (call_id, id);
