-- Schema version 7: audit anyone can verify outside the database (see the PostgreSQL migration of the
-- same number). The audit table refuses UPDATE as it already refused DELETE; checkpoints and
-- verification records are append-only too.

CREATE TRIGGER lynx_audit_events_no_update BEFORE UPDATE ON lynx_audit_events
BEGIN
    SELECT RAISE(ABORT, 'lynx_audit_events is append-only');
END;

CREATE TABLE lynx_audit_checkpoints (
    tenant_id   TEXT NOT NULL,
    tree_size   INTEGER NOT NULL CHECK (tree_size > 0),
    root_hash   TEXT NOT NULL,
    frontier    TEXT NOT NULL CHECK (json_valid(frontier)),
    note        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    instance_id TEXT,
    PRIMARY KEY (tenant_id, tree_size)
);

CREATE TABLE lynx_audit_verifications (
    tenant_id       TEXT NOT NULL,
    verified_at     TEXT NOT NULL,
    events          INTEGER NOT NULL,
    checkpoint_size INTEGER,
    verified_by     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, verified_at)
);

CREATE TRIGGER lynx_audit_checkpoints_no_update BEFORE UPDATE ON lynx_audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'lynx_audit_checkpoints is append-only');
END;
CREATE TRIGGER lynx_audit_checkpoints_no_delete BEFORE DELETE ON lynx_audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'lynx_audit_checkpoints is append-only');
END;
CREATE TRIGGER lynx_audit_verifications_no_update BEFORE UPDATE ON lynx_audit_verifications
BEGIN
    SELECT RAISE(ABORT, 'lynx_audit_verifications is append-only');
END;
CREATE TRIGGER lynx_audit_verifications_no_delete BEFORE DELETE ON lynx_audit_verifications
BEGIN
    SELECT RAISE(ABORT, 'lynx_audit_verifications is append-only');
END;
