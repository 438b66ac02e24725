-- Several switches (nodes) on one PostgreSQL store (docs/scaling.md).
-- PostgreSQL only: a SQLite store is held by one switch, which needs no
-- claims. Times are BIGINT milliseconds since the Unix epoch, taken from
-- the database server's clock (never a node's), so nodes whose clocks
-- disagree still agree on when a lease ends.

-- One row per node name: a node proves it is alive by moving
-- heartbeat_ms; `instance` tells two processes under one name apart.
CREATE TABLE cluster_nodes (
    node         TEXT    PRIMARY KEY NOT NULL,
    instance     TEXT    NOT NULL,
    started_ms   BIGINT  NOT NULL,
    heartbeat_ms BIGINT  NOT NULL,
    lease_ms     BIGINT  NOT NULL
);

-- Who may ring an agent. A node rings an agent only after it moved this
-- row to itself (a conditional upsert: free, or the holder's lease over),
-- which bumps `token`; every later write names the token it got, so a node
-- that stalled past its lease cannot overwrite the claim another node took
-- meanwhile (a fencing token). `misses` is the agent's count of
-- consecutive missed offers, shared by every node that offers them.
CREATE TABLE agent_claims (
    user_id    TEXT     PRIMARY KEY NOT NULL,
    node       TEXT     NOT NULL,
    token      BIGINT   NOT NULL,
    state      TEXT     NOT NULL CHECK (state IN ('busy', 'wrap-up', 'free')),
    until_ms   BIGINT   NOT NULL,
    misses     INTEGER  NOT NULL DEFAULT 0 CHECK (misses >= 0),
    claimed_ms BIGINT   NOT NULL
);

-- The display copy of activities is per node: a node that starts clears
-- only its own (its calls died with it), never another node's.
ALTER TABLE agent_state ADD COLUMN node TEXT NOT NULL DEFAULT '';
