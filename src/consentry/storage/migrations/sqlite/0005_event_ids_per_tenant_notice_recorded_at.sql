-- Issue 10 (#3, #16, #4): event ids are unique per tenant, and notices know when they were
-- recorded. docs/model.md ("Event ids", "Notices") says why.
--
-- 1. Event ids: UNIQUE (event_id) becomes UNIQUE (event_id, tenant). A tenant's write must not
--    depend on, nor reveal, what another tenant recorded: with a global key, a second tenant
--    reusing an id (two clients deriving uuid5 ids from the same data, or a probe) could only
--    be refused, which tells it that the id is taken. event_id stays the key's first column, so
--    lookups by event id alone (the ledger's inclusion proofs) keep their index.
--    SQLite cannot drop a column's UNIQUE constraint: the table is rebuilt, as SQLite's
--    documentation prescribes (new table, copy, drop, rename, indexes and triggers again), in
--    this migration's one transaction. It copies every event once (seconds per million rows).
--    DROP TABLE fires no DELETE trigger, and no other table or trigger refers to events.
CREATE TABLE events_0005 (
    position        INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL,
    tenant          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    subject_version INTEGER NOT NULL,
    purpose         TEXT NOT NULL,
    action          TEXT NOT NULL,
    legal_basis     TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    source          TEXT NOT NULL,
    actor           TEXT NOT NULL,
    jurisdiction    TEXT,
    notice_id       TEXT,
    notice_version  INTEGER,
    notice_hash     TEXT,
    ip              TEXT,
    user_agent      TEXT,
    raw_signal      TEXT,
    expires_at      TEXT,
    UNIQUE (event_id, tenant),
    UNIQUE (tenant, subject, subject_version)
);
INSERT INTO events_0005 (position, event_id, tenant, subject, subject_version, purpose, action,
    legal_basis, occurred_at, recorded_at, source, actor, jurisdiction, notice_id,
    notice_version, notice_hash, ip, user_agent, raw_signal, expires_at)
SELECT position, event_id, tenant, subject, subject_version, purpose, action, legal_basis,
    occurred_at, recorded_at, source, actor, jurisdiction, notice_id, notice_version,
    notice_hash, ip, user_agent, raw_signal, expires_at
FROM events ORDER BY position;
DROP TABLE events;
ALTER TABLE events_0005 RENAME TO events;
CREATE INDEX events_subject ON events (tenant, subject, position);
CREATE INDEX events_tenant ON events (tenant, position);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'consentry: events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'consentry: events are append-only'); END;
CREATE TRIGGER events_no_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE position = NEW.position
             OR (event_id = NEW.event_id AND tenant = NEW.tenant)
             OR (tenant = NEW.tenant AND subject = NEW.subject
                 AND subject_version = NEW.subject_version))
BEGIN SELECT RAISE(ABORT, 'consentry: events are append-only (this insert would replace one)'); END;

-- 2. Notices get recorded_at, when Consentry stored the version ("as known at T" ignores the
--    versions recorded after T). A version stored before this migration is taken as recorded
--    when it was published: that is what Consentry assumed until now, so no answer about the
--    past changes on upgrade (a version backdated before the upgrade cannot be told apart).
--    Rebuilt rather than altered, to keep the column NOT NULL without a default.
CREATE TABLE notices_0005 (
    tenant        TEXT NOT NULL REFERENCES tenants(name),
    id            TEXT NOT NULL,
    version       INTEGER NOT NULL,
    text          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    purposes      TEXT NOT NULL,
    material      INTEGER NOT NULL,
    grace_days    INTEGER NOT NULL,
    published_at  TEXT NOT NULL,
    recorded_at   TEXT NOT NULL,
    PRIMARY KEY (tenant, id, version)
);
INSERT INTO notices_0005 (tenant, id, version, text, content_hash, purposes, material,
    grace_days, published_at, recorded_at)
SELECT tenant, id, version, text, content_hash, purposes, material, grace_days, published_at,
    published_at
FROM notices;
DROP TABLE notices;
ALTER TABLE notices_0005 RENAME TO notices;
CREATE TRIGGER notices_no_update BEFORE UPDATE ON notices
BEGIN SELECT RAISE(ABORT, 'consentry: notices are append-only'); END;
CREATE TRIGGER notices_no_delete BEFORE DELETE ON notices
BEGIN SELECT RAISE(ABORT, 'consentry: notices are append-only'); END;
CREATE TRIGGER notices_no_replace BEFORE INSERT ON notices
WHEN EXISTS (SELECT 1 FROM notices WHERE tenant = NEW.tenant AND id = NEW.id
             AND version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'consentry: notices are append-only (this insert would replace one)'); END;
