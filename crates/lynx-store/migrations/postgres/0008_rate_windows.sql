-- Schema version 8: tenant call quotas that hold across instances. Each row is one tenant's minute:
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
