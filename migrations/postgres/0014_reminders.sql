-- Reminders placed before a window ends (issue 14): one row per window end
-- an agent was called about, written before the call is placed, so a
-- restart or another node does not call them twice for the same end.
CREATE TABLE reminders (
    user_id TEXT NOT NULL,
    window_end_ms BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, window_end_ms)
);
