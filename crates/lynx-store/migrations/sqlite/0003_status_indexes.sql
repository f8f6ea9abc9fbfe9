-- Operator views across every tenant (lynx status, /metrics) count drafts by status; at a hundred
-- thousand drafts that count needs its own index.
CREATE INDEX lynx_drafts_status_idx ON lynx_drafts (status);
