-- Issue 10 (#3, #16, #4): event ids are unique per tenant, and notices know when they were
-- recorded. docs/model.md ("Event ids", "Notices") says why.
--
-- 1. Event ids: UNIQUE (event_id) becomes UNIQUE (event_id, tenant). A tenant's write must not
--    depend on, nor reveal, what another tenant recorded: with a global key, a second tenant
--    reusing an id (two clients deriving uuid5 ids from the same data, or a probe) could only
--    be refused, which tells it that the id is taken. event_id stays the key's first column, so
--    lookups by event id alone (the ledger's inclusion proofs) keep their index.
ALTER TABLE events ADD CONSTRAINT events_event_id_tenant_key UNIQUE (event_id, tenant);
ALTER TABLE events DROP CONSTRAINT events_event_id_key;

-- 2. Notices get recorded_at, when Consentry stored the version ("as known at T" ignores the
--    versions recorded after T). A version stored before this migration is taken as recorded
--    when it was published: that is what Consentry assumed until now, so no answer about the
--    past changes on upgrade (a version backdated before the upgrade cannot be told apart).
--    The append-only trigger is lifted for this one backfill, inside the migration's
--    transaction, and is back before it commits.
ALTER TABLE notices ADD COLUMN recorded_at TIMESTAMPTZ;
ALTER TABLE notices DISABLE TRIGGER notices_append_only;
UPDATE notices SET recorded_at = published_at;
ALTER TABLE notices ENABLE TRIGGER notices_append_only;
ALTER TABLE notices ALTER COLUMN recorded_at SET NOT NULL;
