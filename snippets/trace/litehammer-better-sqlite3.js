// litehammer-better-sqlite3.js -- litehammer trace for better-sqlite3: every statement, timed,
// as JSON lines for `litehammer import` (printed by `litehammer capture --snippet node`;
// docs/capture.md). better-sqlite3 compiles SQLite in, so `litehammer capture` cannot see it,
// and its `verbose` callback has no timing and cuts values at 32 bytes.
//
//   const Database = require('./litehammer-better-sqlite3')(require('better-sqlite3'));
//   app.use(Database.middleware);   // Express: one request id per HTTP request
//
// Output: $LITEHAMMER_TRACE (default litehammer-node.jsonl), appended to by every process
// (cluster workers included), written in blocks of 64 KiB, every 200 ms and at exit.
'use strict';
const fs = require('fs');
const path = require('path');
const { AsyncLocalStorage } = require('async_hooks');

module.exports = function trace(Database) {
  if (Database.litehammer) return Database;
  const file = process.env.LITEHAMMER_TRACE || 'litehammer-node.jsonl';
  const requests = new AsyncLocalStorage();
  const conns = new WeakMap();
  const program = path.basename(process.argv[1] || process.argv0);
  let fd = null;
  let pid = null;
  let buf = [];
  let size = 0;
  let nextConn = 0;
  let nextRequest = 0;
  const now = () => Number(process.hrtime.bigint());
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) * 1000; };
  const flush = () => {
    if (!buf.length) return;
    if (pid !== process.pid) { fd = fs.openSync(file, 'a'); pid = process.pid; }
    fs.writeSync(fd, buf.join(''));
    buf = [];
    size = 0;
  };
  const write = (line) => {
    const text = JSON.stringify(line) + '\n';
    buf.push(text);
    size += text.length;
    if (size >= 65536) flush();
  };
  setInterval(flush, 200).unref();
  process.on('exit', flush);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      flush();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
  const value = (v) => {
    if (typeof v === 'bigint') return { $int: v.toString() };
    if (v instanceof Uint8Array) return { $blob: Buffer.from(v).toString('hex') };
    if (Array.isArray(v)) return v.map(value);
    if (v && typeof v === 'object') {
      const o = {};
      for (const k of Object.keys(v)) o[k] = value(v[k]);
      return o;
    }
    return v === undefined ? null : v;
  };
  const connOf = (db) => {
    let c = conns.get(db);
    if (c === undefined) { c = ++nextConn; conns.set(db, c); }
    return c;
  };
  const base = () => ({ driver: 'better-sqlite3', pid: process.pid, program });

  class Traced extends Database {
    constructor(...args) {
      super(...args);
      write({ ...base(), event: 'open', ts_ns: now(), cpu_ns: cpu(), conn: connOf(this),
        file: this.memory ? '' : path.resolve(this.name) });
    }

    close() {
      write({ ...base(), event: 'close', ts_ns: now(), cpu_ns: cpu(), conn: connOf(this) });
      return super.close();
    }

    exec(sql) {
      const ts = now();
      const c0 = cpu();
      try {
        return super.exec(sql);
      } finally {
        const end = now();
        write({ ...base(), ts_ns: ts, dur_ns: end - ts, cpu_ns: c0, cpu_end_ns: cpu(), conn: connOf(this),
          request: requests.getStore() ?? null, method: 'exec', sql, params: [] });
      }
    }
  }

  // Statements (db.pragma() and db.transaction()'s BEGIN/COMMIT included) share one prototype.
  const probe = new Database(':memory:');
  const S = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  const record = (stmt, method, args, ts, c0, extra) => {
    const end = now();
    write({ ...base(), ts_ns: ts, dur_ns: end - ts, cpu_ns: c0, cpu_end_ns: cpu(),
      conn: connOf(stmt.database), request: requests.getStore() ?? null, method, sql: stmt.source,
      params: value(args), ...extra });
  };
  for (const method of ['run', 'get', 'all']) {
    const orig = S[method];
    S[method] = function (...args) {
      const ts = now();
      const c0 = cpu();
      let r;
      let error = null;
      try {
        r = orig.apply(this, args);
        return r;
      } catch (e) {
        error = String(e && e.code || e);
        throw e;
      } finally {
        const extra = error ? { error } : method === 'run' ? { changes: r.changes }
          : { rows: method === 'get' ? (r === undefined ? 0 : 1) : r.length };
        record(this, method, args, ts, c0, extra);
      }
    };
  }
  const iterate = S.iterate;
  S.iterate = function* (...args) {
    const ts = now();
    const c0 = cpu();
    let rows = 0;
    try {
      for (const row of iterate.apply(this, args)) { rows++; yield row; }
    } finally {
      record(this, 'iterate', args, ts, c0, { rows });
    }
  };
  // Once per process, at its first request: the server, which import reads for the queue
  // model (a cluster worker keeps each keep-alive connection the primary handed it).
  let serverSaid = false;
  const server = () => {
    if (serverSaid) return;
    serverSaid = true;
    write({ driver: 'better-sqlite3', event: 'server', pid: process.pid, ts_ns: now(),
      software: `node/${process.versions.node}`, cluster: require('cluster').isWorker, program });
  };
  Traced.middleware = (req, res, next) => { server(); requests.run(`${process.pid}-${++nextRequest}`, next); };
  Traced.request = (fn) => { server(); return requests.run(`${process.pid}-${++nextRequest}`, fn); };
  Traced.litehammer = true;
  return Traced;
};
