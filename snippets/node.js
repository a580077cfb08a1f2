// litehammer apply --for node: {{config}}
// {{durability}}
// better-sqlite3. journal_mode={{journal_mode}} {{journal_scope}}; synchronous,
// busy_timeout and cache_size are per connection: run them on every `new Database(...)`.
const Database = require("better-sqlite3");

const db = new Database("app.db", { timeout: {{busy_timeout_ms}} });
db.pragma("journal_mode = {{journal_mode}}");
db.pragma("synchronous = {{synchronous}}");
db.pragma("busy_timeout = {{busy_timeout_ms}}");
db.pragma("cache_size = {{cache_size}}");
// Transactions: db.transaction(fn).{{transaction_mode}}() runs BEGIN {{TRANSACTION_MODE}}.
