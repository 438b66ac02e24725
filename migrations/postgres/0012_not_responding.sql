-- PostgreSQL twin of ../0010_not_responding.sql: the not-responding mark
-- (one row per marked agent, read by every node) and the history kinds
-- 'not-responding' and 'responding'.
CREATE TABLE agent_not_responding (
    user_id  TEXT    PRIMARY KEY NOT NULL,
    since_ms BIGINT  NOT NULL,
    reason   TEXT    NOT NULL
);

ALTER TABLE presence_history DROP CONSTRAINT presence_history_kind;
ALTER TABLE presence_history ADD CONSTRAINT presence_history_kind
    CHECK (kind IN ('online', 'offline', 'expired', 'replaced', 'forced-offline',
                    'extended', 'shortened', 'not-responding', 'responding'));
