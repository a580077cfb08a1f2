//! Statement classification for the `txn` and `pragma` fields, by the leading keywords as the
//! shared lexer (`litehammer_trace::lex`) reads them.

use litehammer_trace::lex::{self, Kind};

/// Transaction-control statement kinds (the `txn` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Txn {
    Begin,
    Commit,
    Rollback,
    RollbackTo,
    Savepoint,
    Release,
}

impl Txn {
    pub fn as_str(self) -> &'static str {
        match self {
            Txn::Begin => "begin",
            Txn::Commit => "commit",
            Txn::Rollback => "rollback",
            Txn::RollbackTo => "rollback_to",
            Txn::Savepoint => "savepoint",
            Txn::Release => "release",
        }
    }
}

/// What the statement is, judged by its leading keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Class {
    pub txn: Option<Txn>,
    pub pragma: bool,
}

/// Classifies a statement by its first keyword(s), skipping leading whitespace and comments.
pub fn classify(sql: &str) -> Class {
    // The leading tokens, a word as its text and anything else as "".
    let mut words = lex::tokens(sql)
        .filter(|t| !t.is_trivia())
        .map(|t| if t.kind == Kind::Word { t.text(sql) } else { "" });
    let mut next = || words.next().unwrap_or("");
    let w1 = next();
    let eq = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    let txn = if eq(w1, "BEGIN") {
        Some(Txn::Begin)
    } else if eq(w1, "COMMIT") || eq(w1, "END") {
        Some(Txn::Commit)
    } else if eq(w1, "ROLLBACK") {
        let mut w2 = next();
        if eq(w2, "TRANSACTION") {
            w2 = next();
        }
        Some(if eq(w2, "TO") { Txn::RollbackTo } else { Txn::Rollback })
    } else if eq(w1, "SAVEPOINT") {
        Some(Txn::Savepoint)
    } else if eq(w1, "RELEASE") {
        Some(Txn::Release)
    } else {
        None
    };
    Class {
        txn,
        pragma: eq(w1, "PRAGMA"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let c = |s| classify(s);
        assert_eq!(c("BEGIN IMMEDIATE").txn, Some(Txn::Begin));
        assert_eq!(c("  /* x */ -- y\n begin").txn, Some(Txn::Begin));
        assert_eq!(c("COMMIT").txn, Some(Txn::Commit));
        assert_eq!(c("end transaction").txn, Some(Txn::Commit));
        assert_eq!(c("ROLLBACK").txn, Some(Txn::Rollback));
        assert_eq!(c("ROLLBACK TO sp1").txn, Some(Txn::RollbackTo));
        assert_eq!(c("ROLLBACK TRANSACTION TO SAVEPOINT sp1").txn, Some(Txn::RollbackTo));
        assert_eq!(c("SAVEPOINT a").txn, Some(Txn::Savepoint));
        assert_eq!(c("RELEASE SAVEPOINT a").txn, Some(Txn::Release));
        assert_eq!(c("SELECT 'BEGIN'"), Class::default());
        assert_eq!(c("BEGINNING"), Class::default());
        assert!(c("pragma journal_mode=wal").pragma);
        assert_eq!(c(""), Class::default());
    }
}
