-- The consent log on SQLite: separate tables for separate facts (DESIGN.md, Storage).
CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL REFERENCES tenants(name),
    role        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE purposes (
    tenant           TEXT NOT NULL REFERENCES tenants(name),
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    legal_basis      TEXT NOT NULL,
    required         INTEGER NOT NULL,
    lifetime_days    INTEGER,
    opt_out_category TEXT,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE notices (
    tenant        TEXT NOT NULL REFERENCES tenants(name),
    id            TEXT NOT NULL,
    version       INTEGER NOT NULL,
    text          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    purposes      TEXT NOT NULL,
    material      INTEGER NOT NULL,
    grace_days    INTEGER NOT NULL,
    published_at  TEXT NOT NULL,
    PRIMARY KEY (tenant, id, version)
);

-- The log. position is assigned under the single writer lock (BEGIN IMMEDIATE), so it is
-- gapless and in commit order.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,
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
    UNIQUE (tenant, subject, subject_version)
);
CREATE INDEX events_subject ON events (tenant, subject, position);
CREATE INDEX events_tenant ON events (tenant, position);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'consentry: events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'consentry: events are append-only'); END;
CREATE TRIGGER notices_no_update BEFORE UPDATE ON notices
BEGIN SELECT RAISE(ABORT, 'consentry: notices are append-only'); END;
CREATE TRIGGER notices_no_delete BEFORE DELETE ON notices
BEGIN SELECT RAISE(ABORT, 'consentry: notices are append-only'); END;
-- REPLACE (INSERT OR REPLACE, REPLACE INTO) deletes the row it collides with WITHOUT firing the
-- delete triggers (SQLite fires them only under PRAGMA recursive_triggers), so the triggers above
-- alone let a raw `REPLACE INTO events ...` overwrite an event. Refuse any insert that collides.
CREATE TRIGGER events_no_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE position = NEW.position OR event_id = NEW.event_id
             OR (tenant = NEW.tenant AND subject = NEW.subject
                 AND subject_version = NEW.subject_version))
BEGIN SELECT RAISE(ABORT, 'consentry: events are append-only (this insert would replace one)'); END;
CREATE TRIGGER notices_no_replace BEFORE INSERT ON notices
WHEN EXISTS (SELECT 1 FROM notices WHERE tenant = NEW.tenant AND id = NEW.id
             AND version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'consentry: notices are append-only (this insert would replace one)'); END;

-- The projection: the deciding event per (subject, purpose), written with the events.
CREATE TABLE state (
    tenant          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    position        INTEGER NOT NULL,
    occurred_at     TEXT NOT NULL,
    PRIMARY KEY (tenant, subject, purpose)
);

CREATE TABLE subjects (
    tenant   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (tenant, subject)
);

CREATE TABLE log_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    position     INTEGER NOT NULL,
    recorded_at  TEXT
);
INSERT INTO log_head (id, position, recorded_at) VALUES (1, 0, NULL);

CREATE TABLE idempotency_keys (
    tenant        TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    event_ids     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
);

-- Where each reader of the log (relay, integrator) stands: the outbox is the log itself.
CREATE TABLE reader_offsets (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
