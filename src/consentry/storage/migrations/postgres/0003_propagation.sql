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
    processed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, command_id)
);

-- Wake the relay: every transaction that appends events sends one NOTIFY on `consentry_log`
-- when it COMMITS (NOTIFY is transactional: a rolled-back append wakes nobody, and PostgreSQL
-- folds identical notifications of one transaction into one). The payload is the schema, so a
-- relay ignores appends to another Consentry schema in the same database. A trigger rather than
-- a line in the append code: the append path stays identical on both backends, and the relay
-- still polls (CONSENTRY_RELAY_POLL_INTERVAL_SECONDS) in case a notification is missed.
CREATE FUNCTION consentry_notify_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('consentry_log', current_schema());
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify_relay AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_notify_log();
