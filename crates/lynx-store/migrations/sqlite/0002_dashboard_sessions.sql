-- Dashboard sessions: a signed-in browser holds a random token in an HttpOnly cookie; only its hash
-- is stored. Stored in the database so any instance behind a load balancer can serve the session.
CREATE TABLE lynx_sessions (
    session_hash TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    key_id       TEXT NOT NULL REFERENCES lynx_api_keys (key_id),
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX lynx_sessions_expires_idx ON lynx_sessions (expires_at);
