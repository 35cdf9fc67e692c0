-- Used preference links (issue 10, #18): a link's token is taken once, when it is exchanged for
-- the preference center's session cookie; its id is kept until the token could no longer
-- verify anyway (expires_at: the token's own exp, Unix seconds), then deleted.
CREATE TABLE used_tokens (
    tenant      TEXT NOT NULL REFERENCES tenants(name),
    token_id    TEXT NOT NULL,
    used_at     TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, token_id)
);
CREATE INDEX used_tokens_expiry ON used_tokens (expires_at);
