-- PostgreSQL twin of ../0005_login_calls.sql.

CREATE TABLE login_calls (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id       TEXT    NOT NULL,
    caller        TEXT    NOT NULL,
    agent_user_id TEXT,
    outcome       TEXT    NOT NULL
        CHECK (outcome IN ('online', 'offline', 'invalid', 'unknown-caller', 'withheld',
                           'hung-up', 'pin-failed', 'store-failed')),
    hours         BIGINT,
    started_at_ms BIGINT  NOT NULL,
    ended_at_ms   BIGINT  NOT NULL
);

CREATE INDEX login_calls_started ON login_calls (started_at_ms);
