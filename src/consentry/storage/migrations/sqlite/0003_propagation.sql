-- Propagation (docs/events.md).
-- Commands from the commands topic are executed at most once per (tenant, command id). The
-- events a command writes carry the idempotency key `command:<id>` in the same transaction
-- (idempotency_keys), which is what makes a crash between the append and this row harmless;
-- this table records the outcome so that a re-delivered command is recognised without work,
-- including a command that had nothing to write.
CREATE TABLE processed_commands (
    tenant        TEXT NOT NULL,
    command_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    positions     TEXT NOT NULL,
    processed_at  TEXT NOT NULL,
    PRIMARY KEY (tenant, command_id)
);
