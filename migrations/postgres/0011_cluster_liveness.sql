-- A claim held busy is taken over only once its lease ended before the
-- claiming node's last-but-one heartbeat (src/presence/claims.rs): each
-- heartbeat keeps the one before it here. Against the store's clock alone,
-- a stall of the store or of the whole machine longer than the lease makes
-- every busy claim look lapsed at once, and the first claims after it took
-- agents from nodes that never stopped, still on their calls.
ALTER TABLE cluster_nodes ADD COLUMN prev_heartbeat_ms BIGINT NOT NULL DEFAULT 0;
