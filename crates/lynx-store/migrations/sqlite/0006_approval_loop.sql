-- Schema version 6: the approval loop (see the PostgreSQL migration of the same number). CHECKs list
-- values as comparisons, never IN lists (migration 4).

ALTER TABLE lynx_drafts ADD COLUMN decision_due_at TEXT;
CREATE INDEX lynx_drafts_decision_due_idx ON lynx_drafts (decision_due_at) WHERE status = 'SUBMITTED';

CREATE TABLE lynx_webhooks (
    webhook_id  TEXT PRIMARY KEY,
    tenant_id   TEXT,
    url         TEXT NOT NULL,
    format      TEXT NOT NULL CHECK (format = 'standard' OR format = 'slack'),
    event_types TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(event_types)),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    removed_at  TEXT
);
CREATE INDEX lynx_webhooks_tenant_idx ON lynx_webhooks (tenant_id) WHERE removed_at IS NULL;

CREATE TABLE lynx_webhook_events (
    event_id   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload    TEXT NOT NULL CHECK (json_valid(payload)),
    created_at TEXT NOT NULL
);
CREATE INDEX lynx_webhook_events_tenant_created_idx ON lynx_webhook_events (tenant_id, created_at DESC);

CREATE TABLE lynx_webhook_deliveries (
    event_id        TEXT NOT NULL REFERENCES lynx_webhook_events (event_id),
    webhook_id      TEXT NOT NULL REFERENCES lynx_webhooks (webhook_id),
    tenant_id       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status = 'pending' OR status = 'delivered' OR status = 'dead'),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (event_id, webhook_id)
);
CREATE INDEX lynx_webhook_deliveries_due_idx ON lynx_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX lynx_webhook_deliveries_tenant_idx ON lynx_webhook_deliveries (tenant_id, created_at DESC);
