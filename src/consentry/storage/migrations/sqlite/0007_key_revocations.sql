-- Key revocations (issue 10, #17): which key was revoked, from when, by whom. A row per
-- revocation, never updated; its highest seq is the revocation generation that every server
-- reads (cheaply, at most twice a second) to drop revoked keys from its cache within a second.
-- api_keys.revoked_at holds the effective time (it may lie ahead: a rotation's grace period).
CREATE TABLE api_key_revocations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id      TEXT NOT NULL REFERENCES api_keys(key_id),
    tenant      TEXT NOT NULL REFERENCES tenants(name),
    revoked_at  TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    revoked_by  TEXT NOT NULL DEFAULT ''
);

CREATE TRIGGER api_key_revocations_no_update BEFORE UPDATE ON api_key_revocations
BEGIN SELECT RAISE(ABORT, 'consentry: key revocations are append-only'); END;
CREATE TRIGGER api_key_revocations_no_delete BEFORE DELETE ON api_key_revocations
BEGIN SELECT RAISE(ABORT, 'consentry: key revocations are append-only'); END;
