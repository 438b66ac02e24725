-- The CHECKs of the two tables every log-in call writes, as comparisons
-- (issue 15). SQLite evaluates `x IN ('a', 'b', 'c')` with a constant list
-- of more than two values by building a temporary b-tree of the list
-- (sqlite3FindInIndex, IN_INDEX_EPH) each time the statement runs: three
-- per log-in record (a 4 KiB page zeroed for each), some 40 % of the
-- INSERT's instructions. A chain of `=` tests the same and builds nothing;
-- a NULL passes both (a CHECK fails only on false). `EXPLAIN` of each
-- INSERT shows no `OpenEphemeral` now (presence::tests_sqlite). The values
-- are those of 0010 and 0012. SQLite cannot change a CHECK in place, so
-- both tables are rebuilt with the same ids, as 0008, 0010 and 0012 do.

CREATE TABLE login_calls_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT    NOT NULL,
    caller          TEXT    NOT NULL,
    agent_user_id   TEXT,
    outcome         TEXT    NOT NULL
        CHECK (outcome = 'online' OR outcome = 'offline' OR outcome = 'invalid'
               OR outcome = 'unknown-caller' OR outcome = 'withheld' OR outcome = 'hung-up'
               OR outcome = 'pin-failed' OR outcome = 'store-failed'
               OR outcome = 'caller-id-refused'),
    hours           INTEGER,
    started_at_ms   INTEGER NOT NULL,
    ended_at_ms     INTEGER NOT NULL,
    caller_id_trust TEXT
        CHECK (caller_id_trust = 'any' OR caller_id_trust = 'attested'
               OR caller_id_trust = 'pin-always'),
    attested        INTEGER CHECK (attested = 0 OR attested = 1),
    caller_id       TEXT
        CHECK (caller_id = 'pin' OR caller_id = 'attested' OR caller_id = 'unverified')
);

INSERT INTO login_calls_new (id, call_id, caller, agent_user_id, outcome, hours,
                             started_at_ms, ended_at_ms, caller_id_trust, attested, caller_id)
    SELECT id, call_id, caller, agent_user_id, outcome, hours, started_at_ms, ended_at_ms,
           caller_id_trust, attested, caller_id
    FROM login_calls;

DROP TABLE login_calls;
ALTER TABLE login_calls_new RENAME TO login_calls;
CREATE INDEX login_calls_started ON login_calls (started_at_ms);

CREATE TABLE presence_history_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT    NOT NULL,
    kind            TEXT    NOT NULL
        CHECK (kind = 'online' OR kind = 'offline' OR kind = 'expired' OR kind = 'replaced'
               OR kind = 'forced-offline' OR kind = 'extended' OR kind = 'shortened'
               OR kind = 'not-responding' OR kind = 'responding'),
    at_ms           INTEGER NOT NULL,
    window_start_ms INTEGER,
    window_end_ms   INTEGER,
    call_id         TEXT,
    reason          TEXT    NOT NULL,
    actor           TEXT    NOT NULL
);

INSERT INTO presence_history_new (id, user_id, kind, at_ms, window_start_ms, window_end_ms,
                                  call_id, reason, actor)
    SELECT id, user_id, kind, at_ms, window_start_ms, window_end_ms, call_id, reason, actor
    FROM presence_history;

DROP TABLE presence_history;
ALTER TABLE presence_history_new RENAME TO presence_history;
CREATE INDEX presence_history_user ON presence_history (user_id, id);
CREATE INDEX presence_history_at ON presence_history (at_ms, id);
