# Creates the calibration database: 1,000 posts, 10,000 comments (as litehammer's `rails`).
require "sqlite3"
db = SQLite3::Database.new(ARGV.fetch(0))
db.execute_batch(<<~SQL)
  PRAGMA journal_mode = wal;
  CREATE TABLE posts(id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, title VARCHAR, body TEXT, views INTEGER DEFAULT 0 NOT NULL, created_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL);
  CREATE TABLE comments(id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, post_id INTEGER NOT NULL REFERENCES posts(id), body TEXT, created_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL);
  CREATE INDEX index_comments_on_post_id ON comments(post_id);
SQL
r = Random.new(42)
text = ->(a, b) { "x" * r.rand(a..b) }
now = Time.now.utc.strftime("%Y-%m-%d %H:%M:%S.%6N")
db.transaction do
  1000.times { db.execute("INSERT INTO posts(title, body, views, created_at, updated_at) VALUES (?, ?, ?, ?, ?)", [text.(20, 80), text.(500, 2000), r.rand(0..1000), now, now]) }
  10_000.times { db.execute("INSERT INTO comments(post_id, body, created_at, updated_at) VALUES (?, ?, ?, ?)", [r.rand(1..1000), text.(50, 300), now, now]) }
end
db.close
