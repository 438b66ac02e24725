-- What an online agent is doing right now, as the running switch sees it:
-- on a call ('busy') or in wrap-up after one. No row = idle (or offline).
-- Written by the switch for `tpswitch agents` and other readers in other
-- processes; the switch's own decisions never read it back, and it clears
-- the table at start-up (no call survives a restart).

CREATE TABLE agent_state (
    user_id  TEXT    PRIMARY KEY NOT NULL,
    state    TEXT    NOT NULL CHECK (state IN ('busy', 'wrap-up')),
    since_ms INTEGER NOT NULL        -- UTC milliseconds since the epoch
);
