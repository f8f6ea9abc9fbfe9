-- Schema version 6: the approval loop. A submitted draft carries its decision deadline (set from the
-- Kernel's approval rule when it is submitted, swept to REJECTED by `system` once past); webhook
-- subscriptions; and the outbox — one event row per transition, written in the transition's own
-- transaction, with one delivery row per subscription, claimed by one instance at a time.

ALTER TABLE lynx_drafts ADD COLUMN decision_due_at TIMESTAMPTZ;
CREATE INDEX lynx_drafts_decision_due_idx ON lynx_drafts (decision_due_at) WHERE status = 'SUBMITTED';

-- tenant_id NULL: a subscription to every tenant (LYNX_WEBHOOK_URL). No secret is stored: a
-- subscription's signing secret is derived from the instance key (LYNX_WEBHOOK_KEY_FILE) and its id.
CREATE TABLE lynx_webhooks (
    webhook_id  TEXT PRIMARY KEY,
    tenant_id   TEXT,
    url         TEXT NOT NULL,
    format      TEXT NOT NULL CHECK (format IN ('standard', 'slack')),
    event_types JSONB NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    removed_at  TIMESTAMPTZ
);
CREATE INDEX lynx_webhooks_tenant_idx ON lynx_webhooks (tenant_id) WHERE removed_at IS NULL;

CREATE TABLE lynx_webhook_events (
    event_id   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX lynx_webhook_events_tenant_created_idx ON lynx_webhook_events (tenant_id, created_at DESC);

CREATE TABLE lynx_webhook_deliveries (
    event_id        TEXT NOT NULL REFERENCES lynx_webhook_events (event_id),
    webhook_id      TEXT NOT NULL REFERENCES lynx_webhooks (webhook_id),
    tenant_id       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until   TIMESTAMPTZ,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, webhook_id)
);
CREATE INDEX lynx_webhook_deliveries_due_idx ON lynx_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX lynx_webhook_deliveries_tenant_idx ON lynx_webhook_deliveries (tenant_id, created_at DESC);

-- Row-level security as on every tenant table; a subscription to every tenant is visible to all.
ALTER TABLE lynx_webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_webhooks
    USING (tenant_id IS NULL OR current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) = '*' OR current_setting('lynx.tenant_id', true) = tenant_id);
ALTER TABLE lynx_webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_webhook_events
    USING (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'));
ALTER TABLE lynx_webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_webhook_deliveries
    USING (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'));
