-- litehammer apply --for pragma: {{config}}
-- Persists in the database file (set once; every later connection sees it):
PRAGMA journal_mode={{journal_mode}};
-- Per connection: run these on EVERY connection your application opens.
PRAGMA synchronous={{synchronous}};
PRAGMA busy_timeout={{busy_timeout_ms}};
PRAGMA cache_size={{cache_size}};
-- Write transactions: BEGIN {{TRANSACTION_MODE}};
