-- Dashboard sessions: a signed-in browser holds a random token in an HttpOnly cookie; only its hash
-- is stored. Stored in the database so any instance behind a load balancer can serve the session.
CREATE TABLE lynx_sessions (
    session_hash TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    key_id       TEXT NOT NULL REFERENCES lynx_api_keys (key_id),
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX lynx_sessions_expires_idx ON lynx_sessions (expires_at);
ALTER TABLE lynx_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_sessions
    USING (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'));
