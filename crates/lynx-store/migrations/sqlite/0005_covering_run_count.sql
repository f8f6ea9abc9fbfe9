-- Schema version 5: a tenant's run count read from an index alone.
--
-- `audit.domain.run.read` answers with total_count: the tenant's closed runs (tool_call and refusal rows
-- that are not STARTED). With status and event_type only in the table, counting meant fetching every one of
-- the tenant's rows — 50,000 rows took 10–20 ms when the tenant's rows lay together, and a page read per
-- row when, as in real use, tenants' rows interleave. The (tenant_id, created_at DESC) index STORAGE.md
-- names now carries both columns too: the count, with or without `since`, walks only the tenant's index
-- entries, and no b-tree is added for every audit row to pay for.
DROP INDEX IF EXISTS lynx_audit_events_tenant_created_idx;
CREATE INDEX lynx_audit_events_tenant_created_idx ON lynx_audit_events (tenant_id, created_at DESC, status, event_type);
