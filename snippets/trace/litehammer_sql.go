// Package litehammer writes a litehammer trace of Go's database/sql (printed by `litehammer
// capture --snippet go`; docs/capture.md). mattn/go-sqlite3 usually compiles SQLite in, so
// `litehammer capture` cannot see it; this driver wrapper records from inside instead. Standard
// library only: it wraps any database/sql driver. Save it as a package of the app, then:
//
//	sql.Register("sqlite3-litehammer", litehammer.Wrap(&sqlite3.SQLiteDriver{}))
//	db, _ := sql.Open("sqlite3-litehammer", "file:app.db?_journal_mode=WAL&_txlock=immediate")
//	http.ListenAndServe(":8080", litehammer.Middleware(mux))
//	defer litehammer.Flush() // at shutdown (it also flushes every 200 ms)
//
// and use the Context methods in handlers (db.QueryContext(r.Context(), ...), db.BeginTx(
// r.Context(), nil), tx.ExecContext(...)): the request id and worker slot travel in the context.
//
// It writes litehammer's own trace format (docs/trace-format.md) to $LITEHAMMER_TRACE (default
// litehammer-go.jsonl), one line per statement: every query, exec and prepared statement's run
// with its values written in, its time (a query until its rows are closed), rows returned or
// changed, and the transactions' BEGIN/COMMIT/ROLLBACK, which database/sql runs in the driver.
// `tid` and `conn` are the worker slot (a number per request in flight, reused once the request
// ends): database/sql's pool lends a request any idle connection, so import sees one connection
// per slot. When the pool opens a connection, its journal_mode, synchronous, busy_timeout and
// foreign_keys are read and written as `PRAGMA name = value` lines (the DSN set them inside the
// driver). No CPU readings (goroutines share threads): import takes the gaps between
// statements for app time. One process per trace file. Then: `litehammer import trace.jsonl`.
package litehammer

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type key int

const (
	requestKey key = iota
	slotKey
)

var (
	mu       sync.Mutex
	file     *os.File
	buf      []byte
	requests atomic.Uint64
	slots    = make(chan uint32, 4096) // free worker slots
	nslots   atomic.Uint32
	epoch    = time.Now()
	// Nanoseconds on Go's monotonic clock, placed on the wall-clock scale at start.
	base = epoch.UnixNano()
)

func now() int64 { return base + time.Since(epoch).Nanoseconds() }

// Flush writes what is buffered; call it before the program exits.
func Flush() {
	mu.Lock()
	defer mu.Unlock()
	flushLocked()
}

func flushLocked() {
	if file != nil && len(buf) > 0 {
		file.Write(buf) // whole lines only
		buf = buf[:0]
	}
}

func write(line map[string]any) {
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if file == nil {
		name := os.Getenv("LITEHAMMER_TRACE")
		if name == "" {
			name = "litehammer-go.jsonl"
		}
		f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return
		}
		file = f
		exe, _ := os.Executable()
		h, _ := json.Marshal(map[string]any{
			"v": 1, "kind": "header", "ts": base, "pid": os.Getpid(), "tid": os.Getpid(),
			"ppid": os.Getppid(), "source": "litehammer-go", "clock": "go-monotonic",
			"anchor_mono_ns": base, "anchor_wall_ns": base, "sqlite_version": nil, "exe": exe,
			"redacted": false,
		})
		buf = append(buf, h...)
		buf = append(buf, '\n')
		go func() {
			for range time.Tick(200 * time.Millisecond) {
				Flush()
			}
		}()
	}
	buf = append(buf, b...)
	buf = append(buf, '\n')
	if len(buf) >= 1<<16 {
		flushLocked()
	}
}

// Middleware gives each HTTP request an id and a worker slot.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var slot uint32
		select {
		case slot = <-slots:
		default:
			slot = nslots.Add(1)
		}
		defer func() { slots <- slot }()
		ctx := context.WithValue(r.Context(), requestKey, requests.Add(1))
		ctx = context.WithValue(ctx, slotKey, slot)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// record writes one statement: txn is "begin", "commit", "rollback" or "".
func record(ctx context.Context, start int64, query string, args []driver.NamedValue, txn string,
	inTx bool, changes *int64, rows *int64) {
	slot, _ := ctx.Value(slotKey).(uint32)
	trimmed := strings.TrimSpace(query)
	line := map[string]any{
		"v": 1, "kind": "stmt", "ts": start, "dur_ns": now() - start, "pid": os.Getpid(),
		"tid": slot, "conn": slot, "sql": query, "expanded": expand(query, args),
		"autocommit": !inTx, "pragma": len(trimmed) >= 6 && strings.EqualFold(trimmed[:6], "pragma"),
	}
	if txn != "" {
		line["txn"] = txn
	}
	if changes != nil {
		line["changes"] = *changes
	}
	if rows != nil {
		line["rows"] = *rows
	}
	if id, ok := ctx.Value(requestKey).(uint64); ok {
		line["request"] = id
	}
	write(line)
}

// Wrap returns a driver that traces d.
func Wrap(d driver.Driver) driver.Driver { return &wrapDriver{d} }

type wrapDriver struct{ d driver.Driver }

func (w *wrapDriver) Open(name string) (driver.Conn, error) {
	return w.open(context.Background(), name, func() (driver.Conn, error) { return w.d.Open(name) })
}

func (w *wrapDriver) OpenConnector(name string) (driver.Connector, error) {
	return &connector{w, name}, nil
}

type connector struct {
	w    *wrapDriver
	name string
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	return c.w.open(ctx, c.name, func() (driver.Conn, error) {
		if dc, ok := c.w.d.(driver.DriverContext); ok {
			inner, err := dc.OpenConnector(c.name)
			if err != nil {
				return nil, err
			}
			return inner.Connect(ctx)
		}
		return c.w.d.Open(c.name)
	})
}

func (c *connector) Driver() driver.Driver { return c.w }

func (w *wrapDriver) open(ctx context.Context, name string, open func() (driver.Conn, error)) (driver.Conn, error) {
	inner, err := open()
	if err != nil {
		return nil, err
	}
	c := &conn{inner: inner, begin: "BEGIN"}
	if u, err := url.Parse(name); err == nil {
		switch strings.ToLower(u.Query().Get("_txlock")) {
		case "immediate":
			c.begin = "BEGIN IMMEDIATE"
		case "exclusive":
			c.begin = "BEGIN EXCLUSIVE"
		}
	}
	c.settings(ctx)
	return c, nil
}

type conn struct {
	inner driver.Conn
	begin string
	inTx  bool
}

// settings writes the connection's settings as PRAGMA assignments.
func (c *conn) settings(ctx context.Context) {
	q, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return
	}
	slot, _ := ctx.Value(slotKey).(uint32) // the connection's, not the request's
	at := context.WithValue(context.Background(), slotKey, slot)
	open := map[string]any{"v": 1, "kind": "open", "ts": now(), "pid": os.Getpid(), "tid": slot, "conn": slot}
	if rows, err := q.QueryContext(ctx, "PRAGMA database_list", nil); err == nil {
		dest := make([]driver.Value, len(rows.Columns()))
		for rows.Next(dest) == nil {
			if len(dest) == 3 && fmt.Sprint(dest[1]) == "main" {
				open["file"] = fmt.Sprintf("%s", dest[2])
			}
		}
		rows.Close()
	}
	write(open)
	for _, name := range []string{"journal_mode", "synchronous", "busy_timeout", "foreign_keys"} {
		start := now()
		rows, err := q.QueryContext(ctx, "PRAGMA "+name, nil)
		if err != nil {
			continue
		}
		dest := make([]driver.Value, len(rows.Columns()))
		if rows.Next(dest) == nil && len(dest) == 1 {
			var v string
			switch x := dest[0].(type) {
			case []byte:
				v = string(x)
			case string:
				v = x
			case int64:
				v = strconv.FormatInt(x, 10)
			}
			if v != "" {
				record(at, start, "PRAGMA "+name+" = "+v, nil, "", false, nil, nil)
			}
		}
		rows.Close()
	}
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var s driver.Stmt
	var err error
	if p, ok := c.inner.(driver.ConnPrepareContext); ok {
		s, err = p.PrepareContext(ctx, query)
	} else {
		s, err = c.inner.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &stmt{c: c, inner: s, query: query}, nil
}

func (c *conn) Close() error { return c.inner.Close() }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	start := now()
	var t driver.Tx
	var err error
	if b, ok := c.inner.(driver.ConnBeginTx); ok {
		t, err = b.BeginTx(ctx, opts)
	} else {
		t, err = c.inner.Begin() //nolint:staticcheck // drivers without BeginTx
	}
	if err != nil {
		return nil, err
	}
	c.inTx = true
	record(ctx, start, c.begin, nil, "begin", true, nil, nil)
	return &tx{c: c, inner: t, ctx: ctx}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.inner.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	start := now()
	res, err := e.ExecContext(ctx, query, args)
	if err == driver.ErrSkip {
		return nil, err
	}
	recordExec(ctx, start, c, query, args, res)
	return res, err
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	start := now()
	rs, err := q.QueryContext(ctx, query, args)
	if err == driver.ErrSkip {
		return nil, err
	}
	if err != nil {
		record(ctx, start, query, args, "", c.inTx, nil, nil)
		return nil, err
	}
	return &rows{inner: rs, ctx: ctx, start: start, query: query, args: args, inTx: c.inTx}, nil
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func recordExec(ctx context.Context, start int64, c *conn, query string, args []driver.NamedValue, res driver.Result) {
	var changes *int64
	if res != nil {
		if n, err := res.RowsAffected(); err == nil {
			changes = &n
		}
	}
	record(ctx, start, query, args, "", c.inTx, changes, nil)
}

type tx struct {
	c     *conn
	inner driver.Tx
	ctx   context.Context
}

func (t *tx) Commit() error {
	start := now()
	err := t.inner.Commit()
	t.c.inTx = false
	record(t.ctx, start, "COMMIT", nil, "commit", false, nil, nil)
	return err
}

func (t *tx) Rollback() error {
	start := now()
	err := t.inner.Rollback()
	t.c.inTx = false
	record(t.ctx, start, "ROLLBACK", nil, "rollback", false, nil, nil)
	return err
}

type stmt struct {
	c     *conn
	inner driver.Stmt
	query string
}

func (s *stmt) Close() error  { return s.inner.Close() }
func (s *stmt) NumInput() int { return s.inner.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	start := now()
	var res driver.Result
	var err error
	if e, ok := s.inner.(driver.StmtExecContext); ok {
		res, err = e.ExecContext(ctx, args)
	} else {
		res, err = s.inner.Exec(values(args)) //nolint:staticcheck // drivers without ExecContext
	}
	recordExec(ctx, start, s.c, s.query, args, res)
	return res, err
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	start := now()
	var rs driver.Rows
	var err error
	if q, ok := s.inner.(driver.StmtQueryContext); ok {
		rs, err = q.QueryContext(ctx, args)
	} else {
		rs, err = s.inner.Query(values(args)) //nolint:staticcheck // drivers without QueryContext
	}
	if err != nil {
		record(ctx, start, s.query, args, "", s.c.inTx, nil, nil)
		return nil, err
	}
	return &rows{inner: rs, ctx: ctx, start: start, query: s.query, args: args, inTx: s.c.inTx}, nil
}

func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error { return s.c.CheckNamedValue(nv) }

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func values(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

// rows times a query until its rows are closed, and counts them.
type rows struct {
	inner driver.Rows
	ctx   context.Context
	start int64
	query string
	args  []driver.NamedValue
	inTx  bool
	n     int64
	done  bool
}

func (r *rows) Columns() []string { return r.inner.Columns() }

func (r *rows) Next(dest []driver.Value) error {
	err := r.inner.Next(dest)
	if err == nil {
		r.n++
	}
	return err
}

func (r *rows) Close() error {
	err := r.inner.Close()
	if !r.done {
		r.done = true
		n := r.n
		record(r.ctx, r.start, r.query, r.args, "", r.inTx, nil, &n)
	}
	return err
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.inner.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

// expand writes the values into the statement the way sqlite3_expanded_sql does: `?`, `?NNN`,
// `:name`, `@name` and `$name` outside quotes and comments.
func expand(query string, args []driver.NamedValue) string {
	if len(args) == 0 {
		return query
	}
	var b strings.Builder
	next := 0 // the last positional index used
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := byte(c)
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(query) {
				if query[j] == end {
					if end != ']' && j+1 < len(query) && query[j+1] == end {
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(query))
			b.WriteString(query[i:j])
			i = j
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				j = len(query) - i - 2
			} else {
				j += 2
			}
			b.WriteString(query[i : i+2+j])
			i += 2 + j
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			idx := next + 1
			if j > i+1 {
				idx, _ = strconv.Atoi(query[i+1 : j])
			}
			next = max(next, idx)
			if v, ok := byOrdinal(args, idx); ok {
				b.WriteString(literal(v))
			} else {
				b.WriteString(query[i:j])
			}
			i = j
		case c == ':' || c == '@' || c == '$':
			j := i + 1
			for j < len(query) && (query[j] == '_' || query[j] >= '0' && query[j] <= '9' ||
				query[j]|0x20 >= 'a' && query[j]|0x20 <= 'z' || query[j] >= 0x80) {
				j++
			}
			if j == i+1 {
				b.WriteByte(c)
				i++
				continue
			}
			name := query[i+1 : j]
			v, ok := byName(args, name)
			if !ok {
				next++
				v, ok = byOrdinal(args, next)
			}
			if ok {
				b.WriteString(literal(v))
			} else {
				b.WriteString(query[i:j])
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func byOrdinal(args []driver.NamedValue, i int) (driver.Value, bool) {
	for _, a := range args {
		if a.Name == "" && a.Ordinal == i {
			return a.Value, true
		}
	}
	return nil, false
}

func byName(args []driver.NamedValue, name string) (driver.Value, bool) {
	for _, a := range args {
		if a.Name == name {
			return a.Value, true
		}
	}
	return nil, false
}

// literal is a value as sqlite3_expanded_sql prints it.
func literal(v driver.Value) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return "x'" + hex.EncodeToString(x) + "'"
	case string:
		if i := strings.IndexByte(x, 0); i >= 0 {
			x = x[:i]
		}
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case bool:
		if x {
			return "1"
		}
		return "0"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return realLiteral(x)
	case time.Time:
		return "'" + x.Format("2006-01-02 15:04:05.999999999-07:00") + "'"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// realLiteral prints like SQLite's "%!.15g": always a decimal point (2.0, 1.0e+20).
func realLiteral(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "NULL"
	}
	s := strconv.FormatFloat(f, 'g', 15, 64)
	mant, exp := s, ""
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		mant, exp = s[:i], s[i:]
	}
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	return mant + exp
}
