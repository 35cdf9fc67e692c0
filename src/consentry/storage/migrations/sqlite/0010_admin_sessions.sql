-- Sessions of the operators' console (/admin, issue 15; docs/admin.md). A person signs in with an
-- admin or auditor API key; the browser then holds a random session id in an HttpOnly cookie and
-- this table holds only its SHA-256, with the key it was opened with and when it expires.
-- Not evidence and not part of the log: a row is deleted when its session ends (sign-out) or
-- after it expired. The tenant and role are read through the key at every request, so a revoked
-- key ends its sessions at once.
CREATE TABLE admin_sessions (
    session_hash  TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL REFERENCES api_keys(key_id),
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
CREATE INDEX admin_sessions_key ON admin_sessions (key_id);
