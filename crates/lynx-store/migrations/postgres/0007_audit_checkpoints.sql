-- Schema version 7: audit anyone can verify outside the database. Each tenant's audit rows are the
-- leaves of an RFC 6962 Merkle tree; its signed checkpoints are kept here (and, by Lynx, outside the
-- database). The audit table refuses UPDATE and TRUNCATE as it already refused DELETE; checkpoints
-- and verification records are append-only too.

CREATE TRIGGER lynx_audit_events_no_update BEFORE UPDATE ON lynx_audit_events
    FOR EACH ROW EXECUTE FUNCTION lynx_audit_events_append_only();
CREATE TRIGGER lynx_audit_events_no_truncate BEFORE TRUNCATE ON lynx_audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION lynx_audit_events_append_only();

CREATE TABLE lynx_audit_checkpoints (
    tenant_id   TEXT NOT NULL,
    tree_size   BIGINT NOT NULL CHECK (tree_size > 0),
    root_hash   TEXT NOT NULL,
    frontier    JSONB NOT NULL,
    note        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    instance_id TEXT,
    PRIMARY KEY (tenant_id, tree_size)
);

CREATE TABLE lynx_audit_verifications (
    tenant_id       TEXT NOT NULL,
    verified_at     TIMESTAMPTZ NOT NULL,
    events          BIGINT NOT NULL,
    checkpoint_size BIGINT,
    verified_by     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, verified_at)
);

CREATE FUNCTION lynx_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER lynx_audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON lynx_audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION lynx_append_only();
CREATE TRIGGER lynx_audit_checkpoints_no_truncate BEFORE TRUNCATE ON lynx_audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION lynx_append_only();
CREATE TRIGGER lynx_audit_verifications_append_only BEFORE UPDATE OR DELETE ON lynx_audit_verifications
    FOR EACH ROW EXECUTE FUNCTION lynx_append_only();

ALTER TABLE lynx_audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_audit_checkpoints
    USING (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'));
ALTER TABLE lynx_audit_verifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_audit_verifications FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_audit_verifications
    USING (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'));
