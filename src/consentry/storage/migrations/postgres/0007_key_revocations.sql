-- Key revocations (issue 10, #17): which key was revoked, from when, by whom. A row per
-- revocation, never updated; its highest seq is the revocation generation that every server
-- reads (cheaply, at most twice a second) to drop revoked keys from its cache within a second.
-- api_keys.revoked_at holds the effective time (it may lie ahead: a rotation's grace period).
CREATE TABLE api_key_revocations (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES api_keys(key_id),
    tenant      TEXT NOT NULL REFERENCES tenants(name),
    revoked_at  TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    revoked_by  TEXT NOT NULL DEFAULT ''
);

-- consentry_append_only() comes from 0001.
CREATE TRIGGER api_key_revocations_append_only BEFORE UPDATE OR DELETE ON api_key_revocations
    FOR EACH ROW EXECUTE FUNCTION consentry_append_only();
