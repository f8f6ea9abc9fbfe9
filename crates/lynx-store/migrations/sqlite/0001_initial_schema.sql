-- Lynx schema, version 1 (STORAGE.md). Table and column names are the runbook's; status values are
-- stored as the runbook writes them. Never edit this file once released: add a new migration instead.

CREATE TABLE lynx_drafts (
    draft_id              TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL,
    draft_type            TEXT NOT NULL CHECK (draft_type IN ('docs', 'workflow', 'vpm_payment')),
    payload               TEXT NOT NULL CHECK (json_valid(payload)),
    status                TEXT NOT NULL CHECK (status IN ('DRAFT', 'SUBMITTED', 'APPROVED', 'REJECTED', 'CANCELLED', 'PUBLISHED', 'EXECUTED')),
    risk_level            TEXT NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
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
CREATE UNIQUE INDEX lynx_drafts_tenant_request_uq ON lynx_drafts (tenant_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX lynx_drafts_tenant_created_idx ON lynx_drafts (tenant_id, created_at DESC);
CREATE INDEX lynx_drafts_tenant_status_idx ON lynx_drafts (tenant_id, status);

CREATE TABLE lynx_draft_approvals (
    draft_id    TEXT NOT NULL REFERENCES lynx_drafts (draft_id),
    tenant_id   TEXT NOT NULL,
    approver_id TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('APPROVED', 'REJECTED')),
    notes       TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (draft_id, approver_id)
);

CREATE TABLE lynx_executions (
    execution_id          TEXT PRIMARY KEY,
    draft_id              TEXT NOT NULL,
    tool_id               TEXT NOT NULL,
    tenant_id             TEXT NOT NULL,
    actor_id              TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('STARTED', 'SUCCEEDED', 'FAILED', 'DENIED')),
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
-- This index is the exactly-once guarantee: one live claim or success per tenant, draft and tool.
-- A rolled-back execution no longer counts (a rolled-back submit lets the draft be submitted again;
-- a rolled-back payment leaves its draft EXECUTED, which the execution protocol refuses anyway).
CREATE UNIQUE INDEX lynx_executions_once_uq ON lynx_executions (tenant_id, draft_id, tool_id)
    WHERE status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL;
CREATE INDEX lynx_executions_tenant_draft_idx ON lynx_executions (tenant_id, draft_id);
CREATE UNIQUE INDEX lynx_executions_request_uq ON lynx_executions (tenant_id, tool_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX lynx_executions_tenant_created_idx ON lynx_executions (tenant_id, created_at DESC);
CREATE INDEX lynx_executions_status_created_idx ON lynx_executions (status, created_at);

CREATE TABLE lynx_payments (
    payment_id   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    draft_id     TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    vendor_id    TEXT NOT NULL,
    amount       TEXT NOT NULL,   -- exact decimal, as text: SQLite has no exact numeric type
    currency     TEXT NOT NULL,
    due_date     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending_settlement', 'settled', 'reversed', 'failed')),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX lynx_payments_draft_uq ON lynx_payments (tenant_id, draft_id);
CREATE INDEX lynx_payments_tenant_created_idx ON lynx_payments (tenant_id, created_at DESC);
CREATE INDEX lynx_payments_tenant_status_idx ON lynx_payments (tenant_id, status);

CREATE TABLE settlement_intents (
    payment_id TEXT PRIMARY KEY REFERENCES lynx_payments (payment_id),
    tenant_id  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    provider   TEXT NOT NULL CHECK (provider IN ('none', 'manual')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata))
);
CREATE INDEX settlement_intents_status_idx ON settlement_intents (status);

CREATE TABLE lynx_workflows (
    workflow_id   TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    draft_id      TEXT NOT NULL,
    execution_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    workflow_kind TEXT NOT NULL,
    steps         TEXT NOT NULL CHECK (json_valid(steps)),
    status        TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX lynx_workflows_draft_uq ON lynx_workflows (tenant_id, draft_id);
CREATE INDEX lynx_workflows_tenant_status_idx ON lynx_workflows (tenant_id, status);

CREATE TABLE lynx_audit_events (
    event_id      TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    tool_id       TEXT NOT NULL,
    event_type    TEXT NOT NULL CHECK (event_type IN ('tool_call', 'refusal', 'human_action', 'system')),
    status        TEXT NOT NULL CHECK (status IN ('STARTED', 'SUCCEEDED', 'FAILED', 'DENIED')),
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
-- One chain per tenant: two writers that read the same head cannot both append after it.
CREATE UNIQUE INDEX lynx_audit_events_tenant_seq_uq ON lynx_audit_events (tenant_id, seq);
CREATE INDEX lynx_audit_events_tenant_created_idx ON lynx_audit_events (tenant_id, created_at DESC);
CREATE INDEX lynx_audit_events_tenant_run_idx ON lynx_audit_events (tenant_id, run_id);
CREATE INDEX lynx_audit_events_created_idx ON lynx_audit_events (created_at DESC);

-- Append-only, enforced by the database as well as by Lynx's code.
CREATE TRIGGER lynx_audit_events_no_delete BEFORE DELETE ON lynx_audit_events
BEGIN
    SELECT RAISE(ABORT, 'lynx_audit_events is append-only');
END;

CREATE TABLE lynx_api_keys (
    key_id       TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
);
CREATE INDEX lynx_api_keys_tenant_idx ON lynx_api_keys (tenant_id);

CREATE TABLE lynx_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
