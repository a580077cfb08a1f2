//! Which statement runs inside which: the statements each thread is stepping right now.
//!
//! SQLite runs statements of its own inside the application's: FTS5, FTS3/4 and R*Tree read
//! and write their shadow tables through ordinary prepared statements of the same connection,
//! and a trigger runs as a sub-program of the statement that fired it. All of them reach the
//! connection's trace callback. They are not the application's traffic (import excludes them),
//! and an app that searches an FTS5 index runs hundreds of them per request, so the library
//! records them as a count on the enclosing statement's line (`nested`), not as lines.
//!
//! SQLite says when a statement starts inside another one: the text its STMT event carries is
//! prefixed `-- ` then (and a trigger program is `-- TRIGGER name`, under the statement that
//! fired it). Which statement it is inside comes from frames: the interposed `sqlite3_step`
//! pushes one (the statement and its connection) while the real step runs; SQLite's own
//! statements are stepped inside it (the system SQLite calls its own `sqlite3_step` through the
//! PLT, so they push frames too). Two cursors the application keeps open on one connection are
//! not nested: between its steps a cursor has no frame, and SQLite traces no `-- `.

use std::cell::Cell;

/// Frames kept per thread; deeper nesting is counted in `depth` only (its frames are unknown,
/// which makes the deeper statements top-level: recorded in full, as before).
const MAX_FRAMES: usize = 16;

/// One `sqlite3_step` in progress on this thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub stmt: usize,
    pub db: usize,
}

struct Frames {
    frames: [Cell<Frame>; MAX_FRAMES],
    depth: Cell<usize>,
}

thread_local! {
    static FRAMES: Frames = const {
        Frames {
            frames: [const { Cell::new(Frame { stmt: 0, db: 0 }) }; MAX_FRAMES],
            depth: Cell::new(0),
        }
    };
}

/// Before the real `sqlite3_step(stmt)`: its frame, without its connection (looked up only
/// where a decision needs it, [`with_frames_db`], not on every step). Returns whether it was
/// pushed (pass it to [`leave`]).
pub fn enter(stmt: usize) -> bool {
    FRAMES
        .try_with(|f| {
            let d = f.depth.get();
            if d < MAX_FRAMES {
                f.frames[d].set(Frame { stmt, db: 0 });
            }
            f.depth.set(d + 1);
        })
        .is_ok()
}

/// After the real `sqlite3_step`: drops the frame [`enter`] pushed.
pub fn leave(pushed: bool) {
    if pushed {
        let _ = FRAMES.try_with(|f| f.depth.set(f.depth.get().saturating_sub(1)));
    }
}

/// Runs `f` on this thread's frames in progress, outermost first.
pub fn with_frames<R>(f: impl FnOnce(&[Frame]) -> R) -> R {
    let mut copy = [Frame::default(); MAX_FRAMES];
    let n = FRAMES
        .try_with(|fr| {
            let n = fr.depth.get().min(MAX_FRAMES);
            for (c, s) in copy.iter_mut().zip(&fr.frames[..n]) {
                *c = s.get();
            }
            n
        })
        .unwrap_or(0);
    f(&copy[..n])
}

/// As [`with_frames`], each frame's connection given by `db_of(stmt)` (`sqlite3_db_handle`:
/// the frames' statements are being stepped, so they are alive).
pub fn with_frames_db<R>(db_of: impl Fn(usize) -> usize, f: impl FnOnce(&[Frame]) -> R) -> R {
    with_frames(|fr| {
        let mut copy = [Frame::default(); MAX_FRAMES];
        for (c, x) in copy.iter_mut().zip(fr) {
            *c = Frame {
                stmt: x.stmt,
                db: db_of(x.stmt),
            };
        }
        f(&copy[..fr.len()])
    })
}

/// Whether this thread is inside the step of a statement other than `stmt` (a bind made there
/// is SQLite's own, or an application function's: not mirrored).
pub fn inside_other(stmt: usize) -> bool {
    FRAMES
        .try_with(|f| {
            let n = f.depth.get().min(MAX_FRAMES);
            f.frames[..n].iter().any(|fr| fr.get().stmt != stmt)
        })
        .unwrap_or(false)
}

/// What a statement that starts (STMT event) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The application's: recorded in full.
    TopLevel,
    /// SQLite's own, inside `outer` (the outermost statement of the same connection being
    /// stepped): counted on `outer`'s line.
    Nested { outer: usize },
}

/// Decides what the start of `stmt` on connection `db` is, from the text SQLite traces for it
/// and the statements this thread is stepping (`frames`, outermost first).
///
/// SQLite itself says when a statement starts inside another one of its connection: it
/// prefixes the traced text with `-- ` (`db->nVdbeExec > 1` in `OP_Init`), and it traces a
/// trigger's sub-program as `-- TRIGGER name` under the statement that fired it. So a start is
/// nested only when that text starts with `--` (`dashes`) and either another statement of the
/// same connection is being stepped on this thread (the outermost one is `outer`) or `stmt`'s
/// own execution already started and has not ended (`pending`: a trigger program). An
/// application statement whose text starts with a comment has neither.
pub fn classify(frames: &[Frame], stmt: usize, db: usize, pending: bool, dashes: bool) -> Start {
    if !dashes {
        return Start::TopLevel;
    }
    if let Some(outer) = outer_of(frames, stmt, db) {
        return Start::Nested { outer };
    }
    if pending {
        return Start::Nested { outer: stmt };
    }
    Start::TopLevel
}

/// The outermost statement of connection `db`, other than `stmt`, being stepped on this thread.
fn outer_of(frames: &[Frame], stmt: usize, db: usize) -> Option<usize> {
    frames.iter().find(|f| f.db == db && f.stmt != stmt).map(|f| f.stmt)
}

/// Whether another statement of connection `db` than `stmt` is being stepped on this thread.
pub fn inside_other_of(frames: &[Frame], stmt: usize, db: usize) -> bool {
    outer_of(frames, stmt, db).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB: usize = 0x1000;
    const OTHER_DB: usize = 0x2000;

    fn f(stmt: usize, db: usize) -> Frame {
        Frame { stmt, db }
    }

    #[test]
    fn the_apps_own_statements_are_top_level() {
        // Its first step: the frame of its own step only (or none, when the step is not seen).
        assert_eq!(classify(&[f(1, DB)], 1, DB, false, false), Start::TopLevel);
        assert_eq!(classify(&[], 1, DB, false, false), Start::TopLevel);
        // Two cursors on one connection, interleaved: cursor 1 returned a row and is pending,
        // but it is not being stepped when cursor 2 starts (and SQLite traces no `-- `).
        assert_eq!(classify(&[f(2, DB)], 2, DB, false, false), Start::TopLevel);
        // A statement whose own text starts with a comment, at top level.
        assert_eq!(classify(&[f(3, DB)], 3, DB, false, true), Start::TopLevel);
        assert_eq!(classify(&[], 3, DB, false, true), Start::TopLevel);
        // Run from inside a statement of another connection (an application function reading
        // another database): the application's.
        assert_eq!(
            classify(&[f(1, OTHER_DB), f(4, DB)], 4, DB, false, true),
            Start::TopLevel
        );
        // Stepped inside another statement's step, but SQLite does not call it nested (not
        // inside the other's VDBE, e.g. run from a busy handler): the application's.
        assert_eq!(classify(&[f(1, DB), f(7, DB)], 7, DB, false, false), Start::TopLevel);
        assert!(inside_other_of(&[f(1, DB), f(7, DB)], 7, DB));
        assert!(!inside_other_of(&[f(1, OTHER_DB), f(7, DB)], 7, DB));
    }

    #[test]
    fn statements_sqlite_runs_inside_another_are_nested_in_the_outermost() {
        // FTS5's statement, its step seen (pushed a frame) or not.
        assert_eq!(
            classify(&[f(1, DB), f(7, DB)], 7, DB, false, true),
            Start::Nested { outer: 1 }
        );
        assert_eq!(classify(&[f(1, DB)], 7, DB, false, true), Start::Nested { outer: 1 });
        // Deeper (a trigger's FTS5 write inside another FTS5 statement): the outermost.
        assert_eq!(
            classify(&[f(1, DB), f(7, DB), f(8, DB)], 8, DB, false, true),
            Start::Nested { outer: 1 }
        );
        // Inside a statement of another connection that runs inside one of this connection.
        assert_eq!(
            classify(&[f(1, DB), f(5, OTHER_DB)], 7, DB, false, true),
            Start::Nested { outer: 1 }
        );
        // A trigger program: the same statement, already started, traced as `-- TRIGGER t`.
        assert_eq!(classify(&[f(1, DB)], 1, DB, true, true), Start::Nested { outer: 1 });
        assert_eq!(classify(&[], 1, DB, true, true), Start::Nested { outer: 1 });
    }

    #[test]
    fn frames_follow_the_steps() {
        std::thread::spawn(|| {
            assert!(with_frames(|fr| fr.is_empty()));
            let a = enter(1);
            let b = enter(7);
            assert!(with_frames(|fr| fr == [f(1, 0), f(7, 0)]));
            assert!(with_frames_db(|_| DB, |fr| fr == [f(1, DB), f(7, DB)]));
            assert!(inside_other(7));
            leave(b);
            assert!(!inside_other(1));
            assert!(inside_other(9));
            leave(a);
            assert!(!inside_other(9));
            // Deeper than the frames kept: counted, and popped back to the kept ones.
            let pushed: Vec<bool> = (0..MAX_FRAMES + 3).map(|i| enter(100 + i)).collect();
            assert_eq!(with_frames(|fr| fr.len()), MAX_FRAMES);
            for p in pushed.into_iter().rev() {
                leave(p);
            }
            assert!(with_frames(|fr| fr.is_empty()));
        })
        .join()
        .unwrap();
    }
}
