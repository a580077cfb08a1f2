<?php
// litehammer apply --for laravel: {{config}}
// {{durability}}
// config/database.php, 'connections' => [...]. journal_mode={{journal_mode}}
// {{journal_scope}}; synchronous, busy_timeout and cache_size are per connection: Laravel
// applies these keys on every connection it opens.
return [
    'connections' => [
        'sqlite' => [
            'driver' => 'sqlite',
            'database' => env('DB_DATABASE', database_path('database.sqlite')),
            'prefix' => '',
            'foreign_key_constraints' => env('DB_FOREIGN_KEYS', true),
            'journal_mode' => '{{journal_mode}}',
            'synchronous' => '{{synchronous}}',
            'busy_timeout' => {{busy_timeout_ms}},
            // No key for cache_size or the transaction mode: run
            // DB::statement('PRAGMA cache_size={{cache_size}}') per connection, and
            // BEGIN {{TRANSACTION_MODE}} needs a raw statement.
        ],
    ],
];
