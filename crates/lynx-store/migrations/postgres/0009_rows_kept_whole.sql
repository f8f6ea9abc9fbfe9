-- Schema version 9: rows of a few kilobytes are stored as they are, not compressed.
--
-- PostgreSQL compresses (and, if still too long, moves out of line into the TOAST table) every row over
-- about 2 KB. A payment draft's row is about 2.5 KB (its stored answer alone is 1.6 KB) and a tool call's
-- closing audit row about 2 KB, so nearly every draft and audit insert paid for a pglz compression and an
-- extra insert into a TOAST table and its index — about a tenth of the server's CPU under draft creation. Rows
-- under a page are now kept whole; larger ones are still compressed as before. (Measured: 32 concurrent
-- draft creations 1,850/s before, 2,260/s after; docs/PERFORMANCE.md.)
ALTER TABLE lynx_drafts SET (toast_tuple_target = 8160);
ALTER TABLE lynx_executions SET (toast_tuple_target = 8160);
ALTER TABLE lynx_audit_events SET (toast_tuple_target = 8160);
