-- litehammer apply --for pragma: {{config}}
-- {{durability}}
-- journal_mode={{journal_mode}} {{journal_scope}}:
PRAGMA journal_mode={{journal_mode}};
-- Per connection: run these on EVERY connection your application opens.
PRAGMA synchronous={{synchronous}};
PRAGMA busy_timeout={{busy_timeout_ms}};
PRAGMA cache_size={{cache_size}};
-- Write transactions: BEGIN {{TRANSACTION_MODE}};
