-- Schema version 4: nothing to change on PostgreSQL. SQLite's migration 4 rewrites its
-- CHECK (x IN (...)) constraints as comparisons (SQLite built a temporary b-tree of the list for every
-- row written; PostgreSQL evaluates such a list directly) and drops lynx_audit_events_created_idx (on
-- SQLite, the recent runs across tenants read the table in rowid order; PostgreSQL has no such order and
-- keeps the index). The file keeps both engines' migration numbers in step.
SELECT 1;
