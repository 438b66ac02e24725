-- PostgreSQL twin of ../0007_directory.sql: the directory objects made
-- through the API, `body` the object's TOML table as JSON text (kept as
-- TEXT, not jsonb, so it reads back byte for byte as SQLite's does).
CREATE TABLE directory_objects (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('users', 'flows', 'dispatch_mappings', 'prompts')),
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (kind, key)
);
