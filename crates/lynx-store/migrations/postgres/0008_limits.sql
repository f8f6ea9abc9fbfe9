-- Schema version 8: limits that hold across instances. Tenant call quotas: each row of lynx_rate_windows is one tenant's minute:
-- `granted` is how many calls the instances have leased from its quota so far (an instance leases a
-- batch and spends it locally, so the table sees one write per batch, not per call). Old minutes are
-- deleted as new ones are leased.

CREATE TABLE lynx_rate_windows (
    tenant_id     TEXT NOT NULL,
    window_minute BIGINT NOT NULL,
    granted       BIGINT NOT NULL CHECK (granted >= 0),
    PRIMARY KEY (tenant_id, window_minute)
);

ALTER TABLE lynx_rate_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_rate_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_rate_windows
    USING (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'));

-- Daily spend limits: per (tenant, subject, UTC day, currency) the total counted so far, in hundredths.
-- `subject` is `agent:<user_id>` (payment drafts the user created) or `tenant` (payments executed).
-- A write that spends increments its row in its own transaction, only while the total stays within
-- the limit.
CREATE TABLE lynx_spend_totals (
    tenant_id        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    day              TEXT NOT NULL,
    currency         TEXT NOT NULL,
    total_hundredths BIGINT NOT NULL CHECK (total_hundredths >= 0),
    PRIMARY KEY (tenant_id, subject, day, currency)
);

ALTER TABLE lynx_spend_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE lynx_spend_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY lynx_tenant_isolation ON lynx_spend_totals
    USING (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'))
    WITH CHECK (current_setting('lynx.tenant_id', true) IN (tenant_id, '*'));
