// litehammer_sqlhooks.go -- litehammer trace for Go's database/sql with mattn/go-sqlite3
// (printed by `litehammer capture --snippet go`; docs/capture.md). mattn/go-sqlite3 compiles
// SQLite in, so `litehammer capture` cannot see it. This driver wrapper (github.com/qustavo/sqlhooks/v2)
// writes litehammer's own trace format (docs/trace-format.md), one `stmt` line per query, with
// the request and worker slot the middleware puts in the context:
//
//	sql.Register("sqlite3-litehammer", sqlhooks.Wrap(&sqlite3.SQLiteDriver{}, litehammer.Hooks()))
//	db, _ := sql.Open("sqlite3-litehammer", "app.db")
//	http.ListenAndServe(":8080", litehammer.Middleware(mux)) // and db.QueryContext(r.Context(), ...)
//
// Output: $LITEHAMMER_TRACE (default litehammer-go.jsonl). Not run by litehammer's tests (no Go
// toolchain on the test machine): treat it as a starting point.
package litehammer

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type key int

const (
	startKey key = iota
	requestKey
	slotKey
)

var (
	mu       sync.Mutex
	out      *bufio.Writer
	requests atomic.Uint64
	slots    = make(chan uint32, 4096) // worker slots: the most requests in flight at once
	nslots   atomic.Uint32
)

func write(v map[string]any) {
	b, _ := json.Marshal(v)
	mu.Lock()
	defer mu.Unlock()
	if out == nil {
		name := os.Getenv("LITEHAMMER_TRACE")
		if name == "" {
			name = "litehammer-go.jsonl"
		}
		f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return
		}
		out = bufio.NewWriterSize(f, 1<<16)
		go func() {
			for range time.Tick(200 * time.Millisecond) {
				mu.Lock()
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	out.Write(append(b, '\n'))
}

var epoch = time.Now()

// monotonic is ns on Go's monotonic clock since the process started (one process's trace).
func monotonic() int64 { return time.Since(epoch).Nanoseconds() }

// Middleware gives each HTTP request an id and a worker slot (reused once the request ends).
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

type hooks struct{}

// Hooks are the sqlhooks.Hooks (Before, After, OnError) that time every query.
func Hooks() hooks { return hooks{} }

func (hooks) Before(ctx context.Context, query string, args ...interface{}) (context.Context, error) {
	return context.WithValue(ctx, startKey, monotonic()), nil
}

func (h hooks) After(ctx context.Context, query string, args ...interface{}) (context.Context, error) {
	h.record(ctx, query, args)
	return ctx, nil
}

func (h hooks) OnError(ctx context.Context, err error, query string, args ...interface{}) error {
	h.record(ctx, query, args)
	return err
}

func (hooks) record(ctx context.Context, query string, args []interface{}) {
	start, _ := ctx.Value(startKey).(int64)
	slot, _ := ctx.Value(slotKey).(uint32)
	line := map[string]any{
		"v": 1, "kind": "stmt", "ts": start, "dur_ns": monotonic() - start,
		"pid": os.Getpid(), "tid": slot, "conn": slot, "sql": query, "expanded": expand(query, args),
	}
	if id, ok := ctx.Value(requestKey).(uint64); ok {
		line["request"] = id
	}
	write(line)
}

// expand writes the values into the ? placeholders the way sqlite3_expanded_sql does.
func expand(query string, args []interface{}) string {
	var b strings.Builder
	i := 0
	inStr := false
	for _, c := range query {
		if c == '\'' {
			inStr = !inStr
		}
		if c == '?' && !inStr && i < len(args) {
			b.WriteString(literal(args[i]))
			i++
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func literal(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return "x'" + hex.EncodeToString(x) + "'"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case bool:
		if x {
			return "1"
		}
		return "0"
	case time.Time:
		return "'" + x.Format("2006-01-02 15:04:05.999999999-07:00") + "'"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
