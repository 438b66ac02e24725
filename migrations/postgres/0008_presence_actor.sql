-- PostgreSQL twin of ../0008_presence_actor.sql: who changed an agent's
-- presence, and the kinds 'extended' and 'shortened'. PostgreSQL changes
-- the CHECK and adds the column in place; older rows get the actor their
-- kind implies, as in SQLite.
ALTER TABLE presence_history DROP CONSTRAINT presence_history_kind;
ALTER TABLE presence_history ADD CONSTRAINT presence_history_kind
    CHECK (kind IN ('online', 'offline', 'expired', 'replaced', 'forced-offline',
                    'extended', 'shortened'));
ALTER TABLE presence_history ADD COLUMN actor TEXT;
UPDATE presence_history
    SET actor = CASE WHEN kind IN ('expired', 'forced-offline') THEN 'switch' ELSE 'agent' END;
ALTER TABLE presence_history ALTER COLUMN actor SET NOT NULL;
