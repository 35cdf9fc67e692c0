-- The installation's identity (issue 10): a random id created once, when the schema is migrated.
-- Everything this installation shares with others (the Redis decision cache) is named after it,
-- so two installations (two databases) sharing one Redis never read each other's entries.
-- One row: the CHECK on `singleton` makes a second row impossible.
CREATE TABLE installation (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    id          TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO installation (id) VALUES (replace(gen_random_uuid()::text, '-', ''));
