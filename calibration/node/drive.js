// Runs the Node proof app in-process with the wrapper on and sends VIEWS page views and
// COMMENTS comment posts (tests/framework_apps.rs): node drive.js DB VIEWS COMMENTS
'use strict';
process.env.TRACE = '1';
const { createApp, open, database } = require('./server.js');
const [file, views, comments] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const Database = database();
const db = open(Database, file);
const server = createApp(db, Database).listen(0, async () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  for (let i = 0; i < views; i++) {
    const r = await fetch(`${base}/post/${(i % 3) + 1}/`);
    if (r.status !== 200) throw new Error(`view: ${r.status}`);
  }
  for (let i = 0; i < comments; i++) {
    const r = await fetch(`${base}/post/${(i % 3) + 1}/comment`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `body=it's ${i}` });
    if (r.status !== 201) throw new Error(`comment: ${r.status}`);
  }
  server.close(() => { db.close(); process.exit(0); });
});
