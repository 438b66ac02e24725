-- What let an agent in on a log-in call (issue 14, "Caller ID you can
-- trust"): the trunk's `caller_id_trust` policy at the time ('any',
-- 'attested', 'pin-always'), whether the carrier attested the caller ID
-- (STIR/SHAKEN verstat=TN-Validation-Passed, ATIS-1000074), and the proof
-- the menu took: 'pin', 'attested' or 'unverified' (the caller ID alone).
-- NULL on rows written before this migration, and `caller_id` on calls
-- where nobody was identified. One new outcome: 'caller-id-refused' (the
-- policy wanted a PIN the user does not have).
--
-- Numbered as its PostgreSQL twin, which follows the cluster's 0010 and 0011
-- (PostgreSQL only). SQLite cannot change a CHECK in place, so the table is
-- rebuilt with the same ids (as 0008 does for presence_history).

CREATE TABLE login_calls_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT    NOT NULL,
    caller          TEXT    NOT NULL,
    agent_user_id   TEXT,
    outcome         TEXT    NOT NULL
        CHECK (outcome IN ('online', 'offline', 'invalid', 'unknown-caller', 'withheld',
                           'hung-up', 'pin-failed', 'store-failed', 'caller-id-refused')),
    hours           INTEGER,
    started_at_ms   INTEGER NOT NULL,
    ended_at_ms     INTEGER NOT NULL,
    caller_id_trust TEXT CHECK (caller_id_trust IN ('any', 'attested', 'pin-always')),
    attested        INTEGER CHECK (attested IN (0, 1)),
    caller_id       TEXT CHECK (caller_id IN ('pin', 'attested', 'unverified'))
);

INSERT INTO login_calls_new (id, call_id, caller, agent_user_id, outcome, hours,
                             started_at_ms, ended_at_ms)
    SELECT id, call_id, caller, agent_user_id, outcome, hours, started_at_ms, ended_at_ms
    FROM login_calls;

DROP TABLE login_calls;
ALTER TABLE login_calls_new RENAME TO login_calls;
CREATE INDEX login_calls_started ON login_calls (started_at_ms);
