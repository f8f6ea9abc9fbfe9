-- no-transaction
-- Schema version 4 (SQLite only): cheaper writes, the same guarantees.
--
-- 1. The same constraints, written so that checking them is cheap.
-- A CHECK (x IN ('a', 'b', 'c')) with three or more values makes SQLite build a temporary b-tree of the
-- list for every row it inserts or updates — on lynx_audit_events, two of them per audit row, a fifth of
-- the writer thread's time under load. `x = 'a' OR x = 'b' OR ...` accepts exactly the same values with
-- plain comparisons. SQLite cannot alter a CHECK in place, so each table is rebuilt by the procedure of
-- SQLite's ALTER TABLE documentation: with foreign keys off (they cannot be switched inside a
-- transaction, hence `no-transaction` above and the explicit BEGIN/COMMIT), create the new table, copy the
-- rows, drop the old one, rename, recreate its indexes and triggers, commit. (The procedure's foreign key
-- check is left out: the rows are copied unchanged from tables whose keys were always enforced.)
-- Running it again (a crash after COMMIT, before the migration is recorded) rebuilds the same tables again.
--
-- 2. lynx_audit_events loses its index on created_at alone: every audit row paid for it (about a tenth
-- of the calls per second), and its one user, the recent runs across all tenants in `lynx status`,
-- reads the table backwards by rowid instead — rows are appended, so rowid order is the order in which
-- they were recorded. The per-tenant indexes STORAGE.md names all stay.

PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

-- lynx_drafts
CREATE TABLE lynx_drafts__rebuilt (
    draft_id              TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL,
    draft_type            TEXT NOT NULL CHECK (draft_type = 'docs' OR draft_type = 'workflow' OR draft_type = 'vpm_payment'),
    payload               TEXT NOT NULL CHECK (json_valid(payload)),
    status                TEXT NOT NULL CHECK (status = 'DRAFT' OR status = 'SUBMITTED' OR status = 'APPROVED' OR status = 'REJECTED' OR status = 'CANCELLED' OR status = 'PUBLISHED' OR status = 'EXECUTED'),
    risk_level            TEXT NOT NULL CHECK (risk_level = 'low' OR risk_level = 'medium' OR risk_level = 'high'),
    created_by            TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    source_context        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(source_context)),
    recommended_approvers TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(recommended_approvers)),
    preview_markdown      TEXT NOT NULL DEFAULT '',
    request_id            TEXT,
    request_fingerprint   TEXT,
    response_payload      TEXT CHECK (response_payload IS NULL OR json_valid(response_payload)),
    submitted_at          TEXT,
    submitted_by          TEXT,
    approved_at           TEXT,
    approved_by           TEXT,
    rejected_at           TEXT,
    rejected_by           TEXT,
    rejection_reason      TEXT,
    cancelled_at          TEXT,
    cancelled_by          TEXT
);
INSERT INTO lynx_drafts__rebuilt SELECT * FROM lynx_drafts ORDER BY rowid;
DROP TABLE lynx_drafts;
ALTER TABLE lynx_drafts__rebuilt RENAME TO lynx_drafts;
CREATE UNIQUE INDEX lynx_drafts_tenant_request_uq ON lynx_drafts (tenant_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX lynx_drafts_tenant_created_idx ON lynx_drafts (tenant_id, created_at DESC);
CREATE INDEX lynx_drafts_tenant_status_idx ON lynx_drafts (tenant_id, status);
CREATE INDEX lynx_drafts_status_idx ON lynx_drafts (status);

-- lynx_executions
CREATE TABLE lynx_executions__rebuilt (
    execution_id          TEXT PRIMARY KEY,
    draft_id              TEXT NOT NULL,
    tool_id               TEXT NOT NULL,
    tenant_id             TEXT NOT NULL,
    actor_id              TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status = 'STARTED' OR status = 'SUCCEEDED' OR status = 'FAILED' OR status = 'DENIED'),
    result_payload        TEXT CHECK (result_payload IS NULL OR json_valid(result_payload)),
    created_at            TEXT NOT NULL,
    completed_at          TEXT,
    error_message         TEXT,
    rollback_instructions TEXT CHECK (rollback_instructions IS NULL OR json_valid(rollback_instructions)),
    rolled_back_at        TEXT,
    rolled_back_by        TEXT,
    request_id            TEXT,
    request_fingerprint   TEXT,
    explicit_approval     INTEGER NOT NULL DEFAULT 0,
    source_context        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(source_context))
);
INSERT INTO lynx_executions__rebuilt SELECT * FROM lynx_executions ORDER BY rowid;
DROP TABLE lynx_executions;
ALTER TABLE lynx_executions__rebuilt RENAME TO lynx_executions;
CREATE UNIQUE INDEX lynx_executions_once_uq ON lynx_executions (tenant_id, draft_id, tool_id)
    WHERE status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL;
CREATE INDEX lynx_executions_tenant_draft_idx ON lynx_executions (tenant_id, draft_id);
CREATE UNIQUE INDEX lynx_executions_request_uq ON lynx_executions (tenant_id, tool_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX lynx_executions_tenant_created_idx ON lynx_executions (tenant_id, created_at DESC);
CREATE INDEX lynx_executions_status_created_idx ON lynx_executions (status, created_at);

-- lynx_payments
CREATE TABLE lynx_payments__rebuilt (
    payment_id   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    draft_id     TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    vendor_id    TEXT NOT NULL,
    amount       TEXT NOT NULL,   -- exact decimal, as text: SQLite has no exact numeric type
    currency     TEXT NOT NULL,
    due_date     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status = 'pending_settlement' OR status = 'settled' OR status = 'reversed' OR status = 'failed'),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
INSERT INTO lynx_payments__rebuilt SELECT * FROM lynx_payments ORDER BY rowid;
DROP TABLE lynx_payments;
ALTER TABLE lynx_payments__rebuilt RENAME TO lynx_payments;
CREATE UNIQUE INDEX lynx_payments_draft_uq ON lynx_payments (tenant_id, draft_id);
CREATE INDEX lynx_payments_tenant_created_idx ON lynx_payments (tenant_id, created_at DESC);
CREATE INDEX lynx_payments_tenant_status_idx ON lynx_payments (tenant_id, status);

-- settlement_intents
CREATE TABLE settlement_intents__rebuilt (
    payment_id TEXT PRIMARY KEY REFERENCES lynx_payments (payment_id),
    tenant_id  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status = 'queued' OR status = 'processing' OR status = 'completed' OR status = 'failed' OR status = 'cancelled'),
    provider   TEXT NOT NULL CHECK (provider IN ('none', 'manual')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata))
);
INSERT INTO settlement_intents__rebuilt SELECT * FROM settlement_intents ORDER BY rowid;
DROP TABLE settlement_intents;
ALTER TABLE settlement_intents__rebuilt RENAME TO settlement_intents;
CREATE INDEX settlement_intents_status_idx ON settlement_intents (status);

-- lynx_audit_events
CREATE TABLE lynx_audit_events__rebuilt (
    event_id      TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    tool_id       TEXT NOT NULL,
    event_type    TEXT NOT NULL CHECK (event_type = 'tool_call' OR event_type = 'refusal' OR event_type = 'human_action' OR event_type = 'system'),
    status        TEXT NOT NULL CHECK (status = 'STARTED' OR status = 'SUCCEEDED' OR status = 'FAILED' OR status = 'DENIED'),
    actor_id      TEXT NOT NULL,
    input_data    TEXT,
    output_data   TEXT,
    error_message TEXT,
    created_at    TEXT NOT NULL,
    duration_ms   INTEGER,
    instance_id   TEXT,              -- which Lynx instance wrote the row
    seq           INTEGER NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
INSERT INTO lynx_audit_events__rebuilt SELECT * FROM lynx_audit_events ORDER BY rowid;
DROP TABLE lynx_audit_events;
ALTER TABLE lynx_audit_events__rebuilt RENAME TO lynx_audit_events;
CREATE UNIQUE INDEX lynx_audit_events_tenant_seq_uq ON lynx_audit_events (tenant_id, seq);
CREATE INDEX lynx_audit_events_tenant_created_idx ON lynx_audit_events (tenant_id, created_at DESC);
CREATE INDEX lynx_audit_events_tenant_run_idx ON lynx_audit_events (tenant_id, run_id);
CREATE TRIGGER lynx_audit_events_no_delete BEFORE DELETE ON lynx_audit_events
BEGIN
    SELECT RAISE(ABORT, 'lynx_audit_events is append-only');
END;

COMMIT;
PRAGMA foreign_keys = ON;
-- The copies passed through the WAL; fold them into the database file and give the space back.
PRAGMA wal_checkpoint(TRUNCATE);
