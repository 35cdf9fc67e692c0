-- Collection settings (issue 6): each tenant's signal mapping (its purposes <-> TCF purposes and
-- special features, US opt-out categories, Consent Mode types) and its banner settings.
-- Append-only versions, as notices are: an event recorded from a TC or GPP string can always be
-- explained by the mapping that was in force when it was recorded (the latest version by then).
CREATE TABLE collection_settings (
    tenant      TEXT NOT NULL REFERENCES tenants(name),
    kind        TEXT NOT NULL CHECK (kind IN ('mapping', 'banner')),
    version     INTEGER NOT NULL CHECK (version >= 1),
    body        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, kind, version)
);

-- consentry_append_only() comes from 0001.
CREATE TRIGGER collection_settings_append_only BEFORE UPDATE OR DELETE ON collection_settings
    FOR EACH ROW EXECUTE FUNCTION consentry_append_only();
