// The Node proof app (docs/capture.md): Express + better-sqlite3 12.11.1, the blog of the Django
// calibration app: page views (SELECT post, SELECT its comments, UPDATE views) and comment
// posts (a transaction: INSERT comment, UPDATE post). One process per worker (cluster), one
// connection each, opened at start.
//   node server.js seed DB_PATH POSTS           a fresh database
//   node server.js serve                        env: DB_PATH, PORT (8000), WORKERS (4),
//                                               JOURNAL (wal), SYNC (normal), TRACE=1
// TRACE=1 loads litehammer's wrapper (snippets/trace/litehammer-better-sqlite3.js, as
// `litehammer capture --snippet node` prints it), writing $LITEHAMMER_TRACE.
'use strict';
const cluster = require('cluster');
const path = require('path');
const express = require('express');

function database() {
  let Database = require('better-sqlite3');
  if (process.env.TRACE === '1') {
    Database = require(path.join(__dirname, '../../snippets/trace/litehammer-better-sqlite3.js'))(Database);
  }
  return Database;
}

function open(Database, file) {
  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  db.pragma(`journal_mode = ${process.env.JOURNAL || 'wal'}`);
  db.pragma(`synchronous = ${process.env.SYNC || 'normal'}`);
  return db;
}

function createApp(db, Database) {
  const post = db.prepare('SELECT id, title, body, views, comments FROM post WHERE id = ?');
  const comments = db.prepare('SELECT id, author, body, created FROM comment WHERE post_id = ? ORDER BY id DESC LIMIT 20');
  const view = db.prepare('UPDATE post SET views = views + 1 WHERE id = ?');
  const insert = db.prepare("INSERT INTO comment (post_id, author, body, created) VALUES (?, ?, ?, datetime('now'))");
  const count = db.prepare('UPDATE post SET comments = comments + 1 WHERE id = ?');
  const addComment = db.transaction((id, author, body) => {
    insert.run(id, author, body);
    count.run(id);
  });
  const app = express();
  if (Database.middleware) app.use(Database.middleware);
  app.use(express.urlencoded({ extended: false }));
  const locked = (res, e) => {
    if (e && e.code === 'SQLITE_BUSY') return res.status(503).set('X-Db-Locked', '1').send('database is locked');
    throw e;
  };
  app.get('/post/:id/', (req, res) => {
    try {
      const p = post.get(Number(req.params.id));
      if (!p) return res.status(404).send('no such post');
      const list = comments.all(p.id);
      view.run(p.id);
      res.set('X-Kind', 'view').send(`<h1>${p.title}</h1><p>${p.body}</p>${list.map((c) => `<li>${c.author}: ${c.body}</li>`).join('')}`);
    } catch (e) { locked(res, e); }
  });
  app.post('/post/:id/comment', (req, res) => {
    try {
      addComment(Number(req.params.id), 'visitor', (req.body && req.body.body) || 'a comment');
      res.set('X-Kind', 'comment').status(201).send('ok');
    } catch (e) { locked(res, e); }
  });
  // The same comment post as a GET, for load generators that send one method (oha --urls-from-file).
  app.get('/post/:id/comment/new', (req, res) => {
    try {
      addComment(Number(req.params.id), 'visitor', 'a comment');
      res.set('X-Kind', 'comment').status(201).send('ok');
    } catch (e) { locked(res, e); }
  });
  app.get('/ready', (req, res) => res.send('ready'));
  return app;
}

function seed(file, posts) {
  const Database = require('better-sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = wal');
  db.exec(`CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL,
             views INTEGER NOT NULL DEFAULT 0, comments INTEGER NOT NULL DEFAULT 0);
           CREATE TABLE comment (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES post(id),
             author TEXT NOT NULL, body TEXT NOT NULL, created TEXT NOT NULL);
           CREATE INDEX comment_post ON comment(post_id, id);`);
  const p = db.prepare('INSERT INTO post (id, title, body, comments) VALUES (?, ?, ?, 3)');
  const c = db.prepare("INSERT INTO comment (post_id, author, body, created) VALUES (?, ?, ?, datetime('now'))");
  db.transaction(() => {
    for (let i = 1; i <= posts; i++) {
      p.run(i, `Post ${i}`, 'Lorem ipsum dolor sit amet. '.repeat(20));
      for (let k = 0; k < 3; k++) c.run(i, `author${k}`, `comment ${k} on post ${i}`);
    }
  })();
  db.close();
}

module.exports = { createApp, open, database };

if (require.main === module) {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'seed') {
    seed(args[0], Number(args[1] || 1000));
  } else if (cmd === 'serve') {
    const workers = Number(process.env.WORKERS || 4);
    if (cluster.isPrimary && workers > 1) {
      for (let i = 0; i < workers; i++) cluster.fork();
      const stop = () => { for (const w of Object.values(cluster.workers)) w.kill('SIGTERM'); };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    } else {
      const Database = database();
      const db = open(Database, process.env.DB_PATH);
      const app = createApp(db, Database);
      // SERVED=1: each worker prints the requests it served when it stops (fairness among workers).
      let served = 0;
      const server = app.listen(Number(process.env.PORT || 8000));
      if (process.env.SERVED === '1') server.on('request', () => { served++; });
      const stop = () => {
        if (process.env.SERVED === '1') console.error(`worker ${process.pid} served ${served}`);
        server.close(() => { db.close(); process.exit(0); });
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    }
  } else {
    console.error('usage: node server.js seed DB POSTS | node server.js serve');
    process.exit(2);
  }
}
