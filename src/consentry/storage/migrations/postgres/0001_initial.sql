-- The consent log on PostgreSQL: separate tables for separate facts (DESIGN.md, Storage).
CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL REFERENCES tenants(name),
    role        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
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
    created_at       TIMESTAMPTZ NOT NULL,
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
    published_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, id, version)
);

-- The log. position is assigned while holding the row lock on log_head, which is kept until
-- commit: writers are serialized, so positions are gapless and in commit order (a sequence
-- would leave gaps on rollback and could commit out of order).
CREATE TABLE events (
    position        BIGINT PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE,
    tenant          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    subject_version BIGINT NOT NULL,
    purpose         TEXT NOT NULL,
    action          TEXT NOT NULL,
    legal_basis     TEXT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    source          TEXT NOT NULL,
    actor           TEXT NOT NULL,
    jurisdiction    TEXT,
    notice_id       TEXT,
    notice_version  INTEGER,
    notice_hash     TEXT,
    ip              TEXT,
    user_agent      TEXT,
    raw_signal      TEXT,
    expires_at      TIMESTAMPTZ,
    UNIQUE (tenant, subject, subject_version)
);
CREATE INDEX events_subject ON events (tenant, subject, position);
CREATE INDEX events_tenant ON events (tenant, position);

CREATE FUNCTION consentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consentry: % is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER notices_append_only BEFORE UPDATE OR DELETE ON notices
    FOR EACH ROW EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER notices_no_truncate BEFORE TRUNCATE ON notices
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_append_only();

CREATE TABLE state (
    tenant          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    position        BIGINT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, subject, purpose)
);

CREATE TABLE subjects (
    tenant   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    version  BIGINT NOT NULL,
    PRIMARY KEY (tenant, subject)
);

CREATE TABLE log_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    position     BIGINT NOT NULL,
    recorded_at  TIMESTAMPTZ
);
INSERT INTO log_head (id, position, recorded_at) VALUES (1, 0, NULL);

CREATE TABLE idempotency_keys (
    tenant        TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    event_ids     TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE reader_offsets (
    name        TEXT PRIMARY KEY,
    position    BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
