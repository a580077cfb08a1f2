// The Go proof app (#30, docs/capture.md): net/http + database/sql + mattn/go-sqlite3, the blog
// of the Node and Django calibration apps: page views (SELECT post, SELECT its comments, UPDATE
// views) and comment posts (a transaction: INSERT comment, UPDATE post). One process, a
// database/sql pool of $CONNS connections (8).
//
//	goapp seed DB POSTS             a fresh database
//	goapp serve                     env: DB_PATH, PORT (8000), CONNS (8), JOURNAL (wal), SYNC (normal), TRACE=1
//	goapp drive DB VIEWS COMMENTS   in-process: the server on a free port, VIEWS page views and
//	                                COMMENTS comment posts, one at a time, traced (tests/framework_apps.rs)
//
// TRACE=1 registers the driver through litehammer's wrapper (package litehammer: the file
// `litehammer capture --snippet go` prints, snippets/trace/litehammer_sql.go), writing
// $LITEHAMMER_TRACE. Build: calibration/go/build (offline, Debian's golang-go and
// golang-github-mattn-go-sqlite3-dev).
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"goapp/litehammer"

	"github.com/mattn/go-sqlite3"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func open(file string, traced bool) (*sql.DB, error) {
	driver := "sqlite3"
	if traced {
		driver = "sqlite3-litehammer"
		sql.Register(driver, litehammer.Wrap(&sqlite3.SQLiteDriver{}))
	}
	dsn := fmt.Sprintf("file:%s?_journal_mode=%s&_synchronous=%s&_busy_timeout=5000&_txlock=immediate",
		file, env("JOURNAL", "wal"), env("SYNC", "normal"))
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(env("CONNS", "8"))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	return db, nil
}

func locked(w http.ResponseWriter, err error) {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		w.Header().Set("X-Db-Locked", "1")
		http.Error(w, "database is locked", http.StatusServiceUnavailable)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func view(db *sql.DB, w http.ResponseWriter, r *http.Request, id int64) {
	ctx := r.Context()
	var title, body string
	var views, comments int64
	err := db.QueryRowContext(ctx, "SELECT id, title, body, views, comments FROM post WHERE id = ?", id).
		Scan(&id, &title, &body, &views, &comments)
	if err == sql.ErrNoRows {
		http.Error(w, "no such post", http.StatusNotFound)
		return
	}
	if err != nil {
		locked(w, err)
		return
	}
	rows, err := db.QueryContext(ctx,
		"SELECT id, author, body, created FROM comment WHERE post_id = ? ORDER BY id DESC LIMIT 20", id)
	if err != nil {
		locked(w, err)
		return
	}
	var list strings.Builder
	for rows.Next() {
		var cid int64
		var author, text, created string
		if err := rows.Scan(&cid, &author, &text, &created); err != nil {
			rows.Close()
			locked(w, err)
			return
		}
		fmt.Fprintf(&list, "<li>%s: %s</li>", html.EscapeString(author), html.EscapeString(text))
	}
	rows.Close()
	if _, err := db.ExecContext(ctx, "UPDATE post SET views = views + 1 WHERE id = ?", id); err != nil {
		locked(w, err)
		return
	}
	w.Header().Set("X-Kind", "view")
	fmt.Fprintf(w, "<h1>%s</h1><p>%s</p>%s", html.EscapeString(title), html.EscapeString(body), list.String())
}

func comment(db *sql.DB, w http.ResponseWriter, r *http.Request, id int64) {
	ctx := r.Context()
	text := r.PostFormValue("body")
	if text == "" {
		text = "a comment"
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		locked(w, err)
		return
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO comment (post_id, author, body, created) VALUES (?, ?, ?, datetime('now'))",
		id, "visitor", text); err != nil {
		locked(w, err)
		return
	}
	if _, err := tx.ExecContext(ctx, "UPDATE post SET comments = comments + 1 WHERE id = ?", id); err != nil {
		locked(w, err)
		return
	}
	if err := tx.Commit(); err != nil {
		locked(w, err)
		return
	}
	w.Header().Set("X-Kind", "comment")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, "ok")
}

func handler(db *sql.DB, traced bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ready") })
	mux.HandleFunc("/post/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // post ID [comment]
		id, err := strconv.ParseInt(parts[len(parts)-1], 10, 64)
		switch {
		case len(parts) == 2 && r.Method == http.MethodGet && err == nil:
			view(db, w, r, id)
		case len(parts) == 3 && parts[2] == "comment" && r.Method == http.MethodPost:
			id, err = strconv.ParseInt(parts[1], 10, 64)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			comment(db, w, r, id)
		default:
			http.NotFound(w, r)
		}
	})
	if traced {
		return litehammer.Middleware(mux)
	}
	return mux
}

func seed(file string, posts int) error {
	db, err := sql.Open("sqlite3", "file:"+file+"?_journal_mode=wal")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL,
	    views INTEGER NOT NULL DEFAULT 0, comments INTEGER NOT NULL DEFAULT 0);
	  CREATE TABLE comment (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES post(id),
	    author TEXT NOT NULL, body TEXT NOT NULL, created TEXT NOT NULL);
	  CREATE INDEX comment_post ON comment(post_id, id);`); err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	body := strings.Repeat("Lorem ipsum dolor sit amet. ", 20)
	for i := 1; i <= posts; i++ {
		if _, err := tx.Exec("INSERT INTO post (id, title, body, comments) VALUES (?, ?, ?, 3)", i, fmt.Sprintf("Post %d", i), body); err != nil {
			return err
		}
		for k := 0; k < 3; k++ {
			if _, err := tx.Exec("INSERT INTO comment (post_id, author, body, created) VALUES (?, ?, ?, datetime('now'))",
				i, fmt.Sprintf("author%d", k), fmt.Sprintf("comment %d on post %d", k, i)); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

func drive(file string, views, comments int) error {
	db, err := open(file, true)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(db, true)}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	for i := 0; i < views; i++ {
		res, err := http.Get(fmt.Sprintf("%s/post/%d/", base, i%3+1))
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("view: %d", res.StatusCode)
		}
	}
	for i := 0; i < comments; i++ {
		res, err := http.PostForm(fmt.Sprintf("%s/post/%d/comment", base, i%3+1), url.Values{"body": {fmt.Sprintf("it's %d", i)}})
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 201 {
			return fmt.Errorf("comment: %d", res.StatusCode)
		}
	}
	srv.Shutdown(context.Background())
	db.Close()
	litehammer.Flush()
	return nil
}

func serve() error {
	traced := os.Getenv("TRACE") == "1"
	db, err := open(env("DB_PATH", "app.db"), traced)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: "127.0.0.1:" + env("PORT", "8000"), Handler: handler(db, traced)}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	db.Close()
	litehammer.Flush()
	return nil
}

func main() {
	var err error
	args := os.Args[1:]
	switch {
	case len(args) == 3 && args[0] == "seed":
		n, _ := strconv.Atoi(args[2])
		err = seed(args[1], n)
	case len(args) == 1 && args[0] == "serve":
		err = serve()
	case len(args) == 4 && args[0] == "drive":
		v, _ := strconv.Atoi(args[2])
		c, _ := strconv.Atoi(args[3])
		err = drive(args[1], v, c)
	default:
		fmt.Fprintln(os.Stderr, "usage: goapp seed DB POSTS | goapp serve | goapp drive DB VIEWS COMMENTS")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goapp:", err)
		os.Exit(1)
	}
}
