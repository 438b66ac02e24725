-- PostgreSQL twin of ../0001_presence.sql: the same tables, columns and
-- meaning, so one set of Rust conversions serves both stores. Times are
-- BIGINT milliseconds since the Unix epoch, UTC, as in SQLite (not
-- timestamptz): they compare and sort as numbers and round-trip exactly.

CREATE TABLE presence_current (
    user_id         TEXT    PRIMARY KEY NOT NULL,
    window_start_ms BIGINT  NOT NULL,
    window_end_ms   BIGINT  NOT NULL,
    call_id         TEXT,
    reason          TEXT    NOT NULL,
    CHECK (window_end_ms > window_start_ms)
);

CREATE INDEX presence_current_end ON presence_current (window_end_ms);

CREATE TABLE presence_history (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         TEXT    NOT NULL,
    kind            TEXT    NOT NULL
        CONSTRAINT presence_history_kind
        CHECK (kind IN ('online', 'offline', 'expired', 'replaced', 'forced-offline')),
    at_ms           BIGINT  NOT NULL,
    window_start_ms BIGINT,
    window_end_ms   BIGINT,
    call_id         TEXT,
    reason          TEXT    NOT NULL
);

CREATE INDEX presence_history_user ON presence_history (user_id, id);
