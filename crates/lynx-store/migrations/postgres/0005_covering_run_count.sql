-- Schema version 5: a tenant's run count read from an index alone (as on SQLite). The
-- (tenant_id, created_at DESC) index carries status and event_type, so `audit.domain.run.read`'s
-- total_count can be an index-only scan instead of visiting every one of the tenant's rows.
DROP INDEX IF EXISTS lynx_audit_events_tenant_created_idx;
CREATE INDEX lynx_audit_events_tenant_created_idx ON lynx_audit_events (tenant_id, created_at DESC) INCLUDE (status, event_type);
