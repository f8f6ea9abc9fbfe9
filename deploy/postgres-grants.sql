-- Privileges of the role Lynx serves as (lynx_app) in the production set-up, where another role
-- (lynx_owner) owns the tables and runs `lynx migrate`. Run as lynx_owner (or a superuser) after every
-- `lynx migrate`. lynx_app reads and writes Lynx's tables but can neither change nor remove audit
-- rows, checkpoints or verification records — not even by dropping their triggers, which only the
-- owner may do.
GRANT USAGE ON SCHEMA public TO lynx_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO lynx_app;
REVOKE UPDATE, DELETE, TRUNCATE ON lynx_audit_events, lynx_audit_checkpoints, lynx_audit_verifications FROM lynx_app;
