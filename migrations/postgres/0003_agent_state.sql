-- PostgreSQL twin of ../0003_agent_state.sql.

CREATE TABLE agent_state (
    user_id  TEXT    PRIMARY KEY NOT NULL,
    state    TEXT    NOT NULL CHECK (state IN ('busy', 'wrap-up')),
    since_ms BIGINT  NOT NULL
);
