-- PostgreSQL twin of ../0012_login_caller_id.sql: what let an agent in on
-- a log-in call, and the outcome 'caller-id-refused'.

ALTER TABLE login_calls DROP CONSTRAINT login_calls_outcome_check;
ALTER TABLE login_calls ADD CONSTRAINT login_calls_outcome_check
    CHECK (outcome IN ('online', 'offline', 'invalid', 'unknown-caller', 'withheld',
                       'hung-up', 'pin-failed', 'store-failed', 'caller-id-refused'));
ALTER TABLE login_calls
    ADD COLUMN caller_id_trust TEXT CHECK (caller_id_trust IN ('any', 'attested', 'pin-always')),
    ADD COLUMN attested        BOOLEAN,
    ADD COLUMN caller_id       TEXT CHECK (caller_id IN ('pin', 'attested', 'unverified'));
