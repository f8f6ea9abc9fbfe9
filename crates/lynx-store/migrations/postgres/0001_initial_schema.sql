-- Lynx schema, version 1 (STORAGE.md), PostgreSQL dialect. Same tables, columns and rules as the
-- SQLite migration of the same number; types are PostgreSQL's own (UUID, TIMESTAMPTZ, NUMERIC, JSONB).
-- Never edit this file once released: add a new migration instead.

CREATE TABLE lynx_drafts (
    draft_id              UUID PRIMARY KEY,
    tenant_id             TEXT NOT NULL,
    draft_type            TEXT NOT NULL CHECK (draft_type IN ('docs', 'workflow', 'vpm_payment')),
    payload               JSONB NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('DRAFT', 'SUBMITTED', 'APPROVED', 'REJECTED', 'CANCELLED', 'PUBLISHED', 'EXECUTED')),
    risk_level            TEXT NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    created_by            TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    source_context        JSONB NOT NULL DEFAULT '{}',
    recommended_approvers JSONB NOT NULL DEFAULT '[]',
    preview_markdown      TEXT NOT NULL DEFAULT '',
    request_id            TEXT,
    request_fingerprint   TEXT,
    response_payload      JSONB,
    submitted_at          TIMESTAMPTZ,
    submitted_by          TEXT,
    approved_at           TIMESTAMPTZ,
    approved_by           TEXT,
    rejected_at           TIMESTAMPTZ,
    rejected_by           TEXT,
    rejection_reason      TEXT,
    cancelled_at          TIMESTAMPTZ,
    cancelled_by          TEXT
);
CREATE UNIQUE INDEX lynx_drafts_tenant_request_uq ON lynx_drafts (tenant_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX lynx_drafts_tenant_created_idx ON lynx_drafts (tenant_id, created_at DESC);
CREATE INDEX lynx_drafts_tenant_status_idx ON lynx_drafts (tenant_id, status);

CREATE TABLE lynx_draft_approvals (
    draft_id    UUID NOT NULL REFERENCES lynx_drafts (draft_id),
    tenant_id   TEXT NOT NULL,
    approver_id TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('APPROVED', 'REJECTED')),
    notes       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (draft_id, approver_id)
);

CREATE TABLE lynx_executions (
    execution_id          UUID PRIMARY KEY,
    draft_id              UUID NOT NULL,
    tool_id               TEXT NOT NULL,
    tenant_id             TEXT NOT NULL,
    actor_id              TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('STARTED', 'SUCCEEDED', 'FAILED', 'DENIED')),
    result_payload        JSONB,
    created_at            TIMESTAMPTZ NOT NULL,
    completed_at          TIMESTAMPTZ,
    error_message         TEXT,
    rollback_instructions JSONB,
    rolled_back_at        TIMESTAMPTZ,
    rolled_back_by        TEXT,
    request_id            TEXT,
    request_fingerprint   TEXT,
    explicit_approval     BOOLEAN NOT NULL DEFAULT FALSE,
    source_context        JSONB NOT NULL DEFAULT '{}'
);
-- This index is the exactly-once guarantee: one live claim or success per tenant, draft and tool,
-- across every Lynx instance on this database. A rolled-back execution no longer counts.
CREATE UNIQUE INDEX lynx_executions_once_uq ON lynx_executions (tenant_id, draft_id, tool_id)
    WHERE status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL;
CREATE INDEX lynx_executions_tenant_draft_idx ON lynx_executions (tenant_id, draft_id);
CREATE UNIQUE INDEX lynx_executions_request_uq ON lynx_executions (tenant_id, tool_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX lynx_executions_tenant_created_idx ON lynx_executions (tenant_id, created_at DESC);
CREATE INDEX lynx_executions_status_created_idx ON lynx_executions (status, created_at);

CREATE TABLE lynx_payments (
    payment_id   UUID PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    draft_id     UUID NOT NULL,
    execution_id UUID NOT NULL,
    vendor_id    TEXT NOT NULL,
    amount       NUMERIC(20, 2) NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    due_date     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending_settlement', 'settled', 'reversed', 'failed')),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX lynx_payments_draft_uq ON lynx_payments (tenant_id, draft_id);
CREATE INDEX lynx_payments_tenant_created_idx ON lynx_payments (tenant_id, created_at DESC);
CREATE INDEX lynx_payments_tenant_status_idx ON lynx_payments (tenant_id, status);

CREATE TABLE settlement_intents (
    payment_id UUID PRIMARY KEY REFERENCES lynx_payments (payment_id),
    tenant_id  TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    provider   TEXT NOT NULL CHECK (provider IN ('none', 'manual')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    metadata   JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX settlement_intents_status_idx ON settlement_intents (status);

CREATE TABLE lynx_workflows (
    workflow_id   UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    draft_id      UUID NOT NULL,
    execution_id  UUID NOT NULL,
    name          TEXT NOT NULL,
    workflow_kind TEXT NOT NULL,
    steps         JSONB NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX lynx_workflows_draft_uq ON lynx_workflows (tenant_id, draft_id);
CREATE INDEX lynx_workflows_tenant_status_idx ON lynx_workflows (tenant_id, status);

-- input_data and output_data are `json`, not `jsonb`: the hash chain covers their exact text.
CREATE TABLE lynx_audit_events (
    event_id      UUID PRIMARY KEY,
    run_id        UUID NOT NULL,
    tenant_id     TEXT NOT NULL,
    tool_id       TEXT NOT NULL,
    event_type    TEXT NOT NULL CHECK (event_type IN ('tool_call', 'refusal', 'human_action', 'system')),
    status        TEXT NOT NULL CHECK (status IN ('STARTED', 'SUCCEEDED', 'FAILED', 'DENIED')),
    actor_id      TEXT NOT NULL,
    input_data    JSON,
    output_data   JSON,
    error_message TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    duration_ms   BIGINT,
    instance_id   TEXT,
    seq           BIGINT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE UNIQUE INDEX lynx_audit_events_tenant_seq_uq ON lynx_audit_events (tenant_id, seq);
CREATE INDEX lynx_audit_events_tenant_created_idx ON lynx_audit_events (tenant_id, created_at DESC);
CREATE INDEX lynx_audit_events_tenant_run_idx ON lynx_audit_events (tenant_id, run_id);
CREATE INDEX lynx_audit_events_created_idx ON lynx_audit_events (created_at DESC);

CREATE FUNCTION lynx_audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lynx_audit_events is append-only';
END;
$$;
CREATE TRIGGER lynx_audit_events_no_delete BEFORE DELETE ON lynx_audit_events
    FOR EACH ROW EXECUTE FUNCTION lynx_audit_events_append_only();

CREATE TABLE lynx_api_keys (
    key_id       TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX lynx_api_keys_tenant_idx ON lynx_api_keys (tenant_id);

CREATE TABLE lynx_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL
);

-- Row-level security: the second wall behind the tenant_id filter of every query. A session sees a
-- tenant's rows only with `SET lynx.tenant_id = '<tenant>'`; Lynx's own connections set '*' and narrow
-- to one tenant inside single-tenant transactions. Other clients (Supabase's REST API, an analyst's
-- session) see nothing until they say which tenant they are. Superusers bypass RLS, as always.
DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['lynx_drafts', 'lynx_draft_approvals', 'lynx_executions', 'lynx_payments',
                             'settlement_intents', 'lynx_workflows', 'lynx_audit_events', 'lynx_api_keys']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY lynx_tenant_isolation ON %I USING (current_setting(''lynx.tenant_id'', true) IN (tenant_id, ''*'')) '
            'WITH CHECK (current_setting(''lynx.tenant_id'', true) IN (tenant_id, ''*''))', t);
    END LOOP;
END;
$$;
