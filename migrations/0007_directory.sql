-- The directory objects made through the API (issue 11): users, flows,
-- dispatch mappings and uploaded prompts (`{name, path}`, the audio file
-- under the store's folder). File-declared objects are not stored here; they live
-- in the configuration file. `body` is the object's TOML table as JSON,
-- keys as in the file (a user's PIN included: the switch compares it at
-- log-in, as it does the file's). Rows are listed in the order made.
CREATE TABLE directory_objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('users', 'flows', 'dispatch_mappings', 'prompts')),
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (kind, key)
);
