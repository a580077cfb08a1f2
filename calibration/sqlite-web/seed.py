"""Seeds the sqlite-web proof's database: a `notes` table of N rows (default 1000).

    python3 seed.py DB [N]

The table is what a small notes or log app keeps: an INTEGER PRIMARY KEY, a title, a body of
a few hundred characters, a creation time and an author, with an index on the author. The
load then reads rows by id and inserts new ones through sqlite-web's insert form.
"""
import random
import sqlite3
import sys

db, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000
random.seed(28)
words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
conn = sqlite3.connect(db)
conn.executescript(
    """
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        author TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE INDEX notes_author ON notes(author);
    """
)
conn.executemany(
    "INSERT INTO notes (title, body, author, created) VALUES (?, ?, ?, ?)",
    [
        (
            " ".join(random.choices(words, k=4)),
            " ".join(random.choices(words, k=60)),
            f"user{random.randint(1, 50)}",
            f"2026-12-{random.randint(1, 5):02d}T{random.randint(0, 23):02d}:00:00",
        )
        for _ in range(n)
    ],
)
conn.commit()
conn.close()
