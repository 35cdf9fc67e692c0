-- The installation's identity (issue 10): a random id created once, when the schema is migrated.
-- Everything this installation shares with others (the Redis decision cache) is named after it,
-- so two installations (two databases) sharing one Redis never read each other's entries.
-- One row: the CHECK on `singleton` makes a second row impossible.
CREATE TABLE installation (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    id          TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
INSERT INTO installation (singleton, id, created_at)
VALUES (1, lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
