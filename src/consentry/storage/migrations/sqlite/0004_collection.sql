-- Collection settings (issue 6): each tenant's signal mapping (its purposes <-> TCF purposes and
-- special features, US opt-out categories, Consent Mode types) and its banner settings.
-- Append-only versions, as notices are: an event recorded from a TC or GPP string can always be
-- explained by the mapping that was in force when it was recorded (the latest version by then).
CREATE TABLE collection_settings (
    tenant      TEXT NOT NULL REFERENCES tenants(name),
    kind        TEXT NOT NULL CHECK (kind IN ('mapping', 'banner')),
    version     INTEGER NOT NULL CHECK (version >= 1),
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, version)
);

CREATE TRIGGER collection_settings_no_update BEFORE UPDATE ON collection_settings
BEGIN SELECT RAISE(ABORT, 'consentry: collection settings are append-only'); END;
CREATE TRIGGER collection_settings_no_delete BEFORE DELETE ON collection_settings
BEGIN SELECT RAISE(ABORT, 'consentry: collection settings are append-only'); END;
