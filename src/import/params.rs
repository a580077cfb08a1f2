//! Parameters and times of an imported request kind: captured values replayed or modelled,
//! step references, and app/think time fitted to the observed gaps.

use super::requests::RequestKind;
use super::sql::{self, Value, Verb};
use litehammer_trace::lex::Kind;

/// Longest `replay(...)` list per parameter, and the text it may hold.
const REPLAY_MAX_VALUES: usize = 5000;
const REPLAY_MAX_CHARS: usize = 256 * 1024;

/// A fitted duration: `"850us"`, `"uniform(1ms, 3ms)"`, `"exp(4ms)"`; None when all are ~0.
pub(crate) fn fit_time(samples: &[u64]) -> Option<String> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let median = s[s.len() / 2];
    let mean = s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64;
    if mean < 5_000.0 {
        return None;
    }
    let var = s.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / s.len() as f64;
    let cv = var.sqrt() / mean;
    let pct = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    Some(if s.len() < 3 || cv < 0.2 {
        dur(median)
    } else if cv < 0.6 {
        format!("uniform({}, {})", dur(pct(0.05)), dur(pct(0.95).max(pct(0.05))))
    } else {
        format!("exp({})", dur(mean as u64))
    })
}

/// Nanoseconds as a duration litehammer reads: whole microseconds (ms when exact).
pub(crate) fn dur(ns: u64) -> String {
    let us = (ns + 500) / 1000;
    if us == 0 {
        "0ms".into()
    } else if us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

/// What one parameter becomes, and why (for a comment).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParamOut {
    pub value: toml::Value,
    pub note: Option<String>,
}

fn gs(s: impl Into<String>) -> toml::Value {
    toml::Value::String(s.into())
}

/// The steps of a kind's first request that inserted a row and return its key (`INSERT …
/// RETURNING id`), by the rowid they made: built once per kind, so that finding the INSERT a
/// later value came from is a lookup, not a scan of every earlier step (a request of 20,000
/// statements took minutes).
#[derive(Debug, Default)]
pub(crate) struct Inserted(std::collections::HashMap<i64, Vec<(usize, String)>>);

impl Inserted {
    pub(crate) fn of(kind: &RequestKind) -> Self {
        let mut map: std::collections::HashMap<i64, Vec<(usize, String)>> = std::collections::HashMap::new();
        for (i, s) in kind.instances[0].steps.iter().enumerate() {
            if s.verb != Verb::Insert {
                continue;
            }
            let Some(id) = s.rowid else { continue };
            if let Some(col) = returned_rowid(&s.norm.text) {
                map.entry(id).or_default().push((i, col));
            }
        }
        Inserted(map)
    }

    /// The steps before `step` that inserted the row `id`, the latest first.
    fn before(&self, id: i64, step: usize) -> impl Iterator<Item = &(usize, String)> {
        self.0
            .get(&id)
            .into_iter()
            .flat_map(|v| v.iter().rev())
            .filter(move |(i, _)| *i < step)
    }
}

/// The populated tables' unique keys that populate numbers (`seq()`) where the data held text:
/// (table, column) → rows, both lowercase. A captured value looked up in such a column (a
/// session key) is in the copy but not in the populated table, so each distinct one is given a
/// number of that `seq()` (the first seen 1, the next 2, …, around the rows), the same across
/// every step and kind: the lookups find a row, and one key is always the same row. Without it
/// an `UPDATE … WHERE session_key = ?` of the replay matched no row and wrote nothing.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    rows: std::collections::HashMap<(String, String), u64>,
    numbers: std::cell::RefCell<std::collections::HashMap<(String, String), std::collections::HashMap<String, i64>>>,
}

impl Keys {
    /// `columns`: (table, column, populate generator, rows) of the populate lines.
    pub(crate) fn of<'a>(columns: impl Iterator<Item = (&'a str, &'a str, &'a str, u64)>) -> Self {
        let rows = columns
            .filter(|(_, _, generator, rows)| *generator == "seq()" && *rows > 0)
            .map(|(t, c, _, rows)| ((t.to_ascii_lowercase(), c.to_ascii_lowercase()), rows))
            .collect();
        Keys {
            rows,
            numbers: Default::default(),
        }
    }

    /// The numbers of `column`'s text values as keys of `table.col`, or None when that column is
    /// not a numbered text key or a value is not text.
    fn number(&self, table: &str, col: &str, column: &[&Value]) -> Option<(Vec<Value>, usize, u64)> {
        let key = (table.to_ascii_lowercase(), col.to_ascii_lowercase());
        let rows = *self.rows.get(&key)?;
        if !column.iter().all(|v| matches!(v, Value::Text(_))) {
            return None;
        }
        let mut numbers = self.numbers.borrow_mut();
        let seen = numbers.entry(key).or_default();
        let out = column
            .iter()
            .map(|v| {
                let Value::Text(t) = v else {
                    unreachable!("checked above")
                };
                let next = seen.len() as i64;
                let n = *seen.entry(t.clone()).or_insert(next);
                Value::Int(1 + n % rows as i64)
            })
            .collect();
        Some((out, seen.len(), rows))
    }
}

/// A parameter compared with a numbered text key (`Keys`): its values as those numbers.
fn keyed(
    kind: &RequestKind,
    keys: &Keys,
    step: usize,
    p: usize,
    column: &[&Value],
    replay: bool,
    replay_len: usize,
) -> Option<ParamOut> {
    let text = &kind.instances[0].steps[step].norm.text;
    let table = sql::main_table(text)?;
    let (col, _) = equality_params(text).into_iter().find(|(_, k)| *k == p)?;
    let (numbers, distinct, rows) = keys.number(&table, &col, column)?;
    let refs: Vec<&Value> = numbers.iter().collect();
    let mut out = if replay {
        ParamOut {
            value: gs(replay_list(refs.iter().take(replay_len).copied())),
            note: None,
        }
    } else {
        model(&refs, false)
    };
    let why = format!(
        "captured {table}.{col} keys numbered as populate's seq() numbers them: one key, one row \
         ({distinct} key(s) numbered so far, {rows} row(s))"
    );
    out.note = Some(out.note.map_or(why.clone(), |n| format!("{why}; {n}")));
    Some(out)
}

/// The parameters of step `step` of a kind: references, replayed or modelled values.
pub(crate) fn step_params(
    kind: &RequestKind,
    inserted: &Inserted,
    keys: &Keys,
    step: usize,
    replay: bool,
    replay_len: usize,
) -> Vec<ParamOut> {
    let n = kind.instances[0].steps[step].norm.values.len();
    // New keys count up only where rows are inserted.
    let inserts = kind.instances[0].steps[step].verb == Verb::Insert;
    (0..n)
        .map(|p| {
            let column: Vec<&Value> = kind.instances.iter().map(|r| &r.steps[step].norm.values[p]).collect();
            if let Some((r, why)) = reference(kind, inserted, step, p, replay) {
                return ParamOut {
                    value: gs(r),
                    note: Some(why),
                };
            }
            if let Some(out) = keyed(kind, keys, step, p, &column, replay, replay_len) {
                return out;
            }
            if column.iter().all(|v| v.is_known()) {
                let first = column[0];
                if column.iter().all(|v| *v == first) {
                    return constant(first);
                }
                if replay {
                    return ParamOut {
                        value: gs(replay_list(column.iter().take(replay_len).copied())),
                        note: None,
                    };
                }
                return model(&column, inserts);
            }
            if let Some(out) = model_redacted(&column) {
                return out;
            }
            ParamOut {
                value: gs(format!(
                    "fill_in('parameter ?{} of step {step}: the trace has no value for it')",
                    p + 1
                )),
                note: Some(format!(
                    "?{} of step {step}: no captured value; replace fill_in(...) with a generator",
                    p + 1
                )),
            }
        })
        .collect()
}

/// How many instances a kind may replay within the size limits (the same for every parameter,
/// so the replayed values stay together).
pub(crate) fn replay_len(kind: &RequestKind) -> usize {
    let mut chars = 0usize;
    for (i, r) in kind.instances.iter().enumerate() {
        chars += r
            .steps
            .iter()
            .flat_map(|s| &s.norm.values)
            .map(|v| v.literal().len() + 2)
            .sum::<usize>();
        if i >= REPLAY_MAX_VALUES || chars > REPLAY_MAX_CHARS {
            return i.max(1);
        }
    }
    kind.instances.len()
}

fn constant(v: &Value) -> ParamOut {
    let value = match v {
        Value::Int(i) => toml::Value::Integer(*i),
        Value::Real(r) => toml::Value::Float(*r),
        Value::Text(t) if !t.contains('\'') => gs(format!("const('{t}')")),
        other => gs(format!("replay({})", other.literal())),
    };
    ParamOut { value, note: None }
}

fn replay_list<'a>(values: impl Iterator<Item = &'a Value>) -> String {
    let items: Vec<String> = values.map(Value::literal).collect();
    format!("replay({})", items.join(", "))
}

/// The generator of a populated column that the schema keeps distinct (its rowid alias, a
/// single-column PRIMARY KEY or UNIQUE key), given the values the app inserted into it, the
/// generator fitted to them, the `rows` the line draws and the keys earlier populate lines of
/// the same column take (`taken`, half-open ranges): `seq(first)` from the smallest integer
/// inserted (1 for text), moved past any taken range it would overlap, so no row count repeats
/// a key. `uniform(1, 2)` fitted to two ids fails with "UNIQUE constraint failed" as soon as it
/// draws one twice. Returns the generator, its first value and why; None when the fitted one is
/// already that `seq`, or when every value was NULL (SQLite numbers a rowid, and NULLs never
/// collide under UNIQUE).
pub(crate) fn distinct_generator(
    column: &[&Value],
    fitted: &str,
    rowid: bool,
    rows: u64,
    taken: &[(i64, i64)],
) -> Option<(String, i64, String)> {
    let non_null: Vec<&Value> = column.iter().copied().filter(|v| **v != Value::Null).collect();
    if non_null.is_empty() {
        return None;
    }
    let ints: Vec<i64> = non_null
        .iter()
        .filter_map(|v| if let Value::Int(i) = v { Some(*i) } else { None })
        .collect();
    let first = if ints.len() == non_null.len() {
        ints.iter().copied().min()
    } else {
        None
    };
    let mut start = first.unwrap_or(1);
    let end = |s: i64| s.saturating_add(rows.min(i64::MAX as u64) as i64);
    while let Some(&(_, b)) = taken.iter().find(|&&(a, b)| start < b && end(start) > a) {
        start = b;
    }
    let generator = format!("seq({start})");
    if fitted == generator {
        return None;
    }
    let what = if rowid {
        "the rowid (INTEGER PRIMARY KEY)".to_string()
    } else {
        "a unique key".to_string()
    };
    let from = match (first, ints.iter().max()) {
        (Some(lo), Some(hi)) if start != lo => {
            format!(
                "numbered after the keys an earlier populate line takes (the app inserted {lo}–{hi} while setting up)"
            )
        }
        (Some(lo), Some(hi)) if hi > &lo => {
            format!("numbered from the first key the app inserted while setting up ({lo}–{hi})")
        }
        (Some(lo), _) => format!("numbered from the key the app inserted while setting up ({lo})"),
        _ => "numbered, as its values were not all integers".to_string(),
    };
    let why = format!("{generator}: {what}, {from}; not `{fitted}`, which could repeat a key");
    Some((generator, start, why))
}

/// Generators fitted to the captured values.
fn model(column: &[&Value], inserts: bool) -> ParamOut {
    let non_null: Vec<&Value> = column.iter().copied().filter(|v| **v != Value::Null).collect();
    let nulls = column.len() - non_null.len();
    let note = (nulls > 0 && !non_null.is_empty())
        .then(|| format!("{nulls} of {} values were NULL; the model draws none", column.len()));
    if non_null.is_empty() {
        return constant(&Value::Null);
    }
    let mut distinct: Vec<&Value> = Vec::new();
    for v in &non_null {
        if !distinct.contains(v) {
            distinct.push(v);
        }
    }
    let small_set = distinct.len() <= 8 && non_null.len() >= 2 * distinct.len();
    let value = if let Some(ints) = non_null
        .iter()
        .map(|v| if let Value::Int(i) = v { Some(*i) } else { None })
        .collect::<Option<Vec<i64>>>()
    {
        let (lo, hi) = (*ints.iter().min().unwrap_or(&0), *ints.iter().max().unwrap_or(&0));
        if small_set {
            let items: Vec<String> = distinct.iter().map(|v| v.literal()).collect();
            gs(format!("choice({})", items.join(", ")))
        } else if inserts && ints.len() >= 5 && distinct.len() == ints.len() && ints.windows(2).all(|w| w[0] < w[1]) {
            gs(format!("seq({lo})"))
        } else if skewed(&ints) {
            gs(format!("zipf({lo}, {hi})"))
        } else {
            gs(format!("uniform({lo}, {hi})"))
        }
    } else if non_null.iter().all(|v| matches!(v, Value::Text(_))) {
        let lens: Vec<usize> = non_null
            .iter()
            .map(|v| if let Value::Text(t) = v { t.chars().count() } else { 0 })
            .collect();
        let quotable = distinct
            .iter()
            .all(|v| !v.literal()[1..v.literal().len() - 1].contains('\''));
        if small_set && quotable {
            let items: Vec<String> = distinct.iter().map(|v| v.literal()).collect();
            gs(format!("choice({})", items.join(", ")))
        } else if small_set {
            gs(replay_list(distinct.iter().copied()))
        } else {
            let mut lens = lens;
            let (generator, about) = sized("text", &mut lens);
            return ParamOut {
                value: gs(generator),
                note: Some(join_notes(
                    note,
                    format!("text lengths from the captured values ({about})"),
                )),
            };
        }
    } else if non_null.iter().all(|v| matches!(v, Value::Blob(_))) {
        let mut lens: Vec<usize> = non_null
            .iter()
            .map(|v| if let Value::Blob(b) = v { b.len() } else { 0 })
            .collect();
        let (generator, about) = sized("blob", &mut lens);
        return ParamOut {
            value: gs(generator),
            note: Some(join_notes(
                note,
                format!("blob lengths from the captured values ({about})"),
            )),
        };
    } else if small_set {
        gs(replay_list(distinct.iter().copied()))
    } else {
        let reals: Vec<f64> = non_null
            .iter()
            .filter_map(|v| match v {
                Value::Int(i) => Some(*i as f64),
                Value::Real(r) => Some(*r),
                _ => None,
            })
            .collect();
        let mean = reals.iter().sum::<f64>() / reals.len().max(1) as f64;
        let sd = (reals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / reals.len().max(1) as f64).sqrt();
        return ParamOut {
            value: gs(format!("gaussian({mean:.3}, {sd:.3})")),
            note: Some("real or mixed values modelled as gaussian integers".into()),
        };
    };
    ParamOut { value, note }
}

fn join_notes(first: Option<String>, second: String) -> String {
    match first {
        Some(f) => format!("{f}; {second}"),
        None => second,
    }
}

/// A text or blob generator (`kind`) whose lengths follow `lens`: `text(n)` when they are all
/// the same, `text(min, max)` for a narrow range or a handful of samples, else
/// `text_lengths(…)` with their 11 deciles (nearest rank), so a column of 2 kB bodies with a few
/// short ones keeps both. Also a description of the sample for a comment
/// ("40 values: 1800–2400, median 2100"). `lens` is sorted in place; empty gives `kind(0)`.
pub(crate) fn sized(kind: &str, lens: &mut [usize]) -> (String, String) {
    lens.sort_unstable();
    let n = lens.len();
    let (Some(&lo), Some(&hi)) = (lens.first(), lens.last()) else {
        return (format!("{kind}(0)"), "0 values".into());
    };
    let median = lens[n / 2];
    let about = if lo == hi {
        format!("{n} value(s): all {lo} long")
    } else {
        format!("{n} values: {lo}–{hi}, median {median}")
    };
    let generator = if lo == hi {
        format!("{kind}({lo})")
    } else if n < 5 || hi - lo <= 4 {
        format!("{kind}({lo}, {hi})")
    } else {
        let deciles: Vec<String> = (0..=10).map(|k| lens[((n - 1) * k + 5) / 10].to_string()).collect();
        format!("{kind}_lengths({})", deciles.join(", "))
    };
    (generator, about)
}

/// The hottest tenth of the keys take more than half of the uses.
fn skewed(ints: &[i64]) -> bool {
    let mut counts: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for i in ints {
        *counts.entry(*i).or_default() += 1;
    }
    let mut c: Vec<usize> = counts.into_values().collect();
    if c.len() < 10 {
        return false;
    }
    c.sort_unstable_by(|a, b| b.cmp(a));
    let top: usize = c[..c.len() / 10].iter().sum();
    top * 2 > ints.len()
}

/// Redacted values: only types and lengths are known.
fn model_redacted(column: &[&Value]) -> Option<ParamOut> {
    let mut ty: Option<&str> = None;
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    let mut lens = Vec::new();
    for v in column {
        match v {
            Value::Redacted(t, len) => {
                if ty.is_some_and(|x| x != t) {
                    return None;
                }
                ty = Some(t);
                lo = lo.min(*len);
                hi = hi.max(*len);
                lens.push(*len);
            }
            Value::Null => {}
            _ => return None,
        }
    }
    let ty = ty?;
    let value = match ty {
        "int" | "real" => {
            let lo_v = if lo <= 1 {
                0
            } else {
                10i64.saturating_pow(lo as u32 - 1)
            };
            let hi_v = 10i64.saturating_pow(hi.min(18) as u32) - 1;
            format!("uniform({lo_v}, {hi_v})")
        }
        "text" | "blob" => {
            let (generator, about) = sized(ty, &mut lens);
            return Some(ParamOut {
                value: gs(generator),
                note: Some(format!(
                    "redacted trace: {ty} lengths from the captured values ({about})"
                )),
            });
        }
        _ => format!("blob({lo}, {hi})"),
    };
    Some(ParamOut {
        value: gs(value),
        note: Some(format!("redacted trace: fitted to the {ty} lengths ({lo}–{hi})")),
    })
}

/// `$i.col` when the evidence says this value is the one an earlier SELECT step read: in every
/// instance it equals that step's `col = ?k` value, and that step returns `col`. One coincidence
/// is not evidence: the kind must have been seen at least twice with at least two different
/// values (a constant stays a constant), and no instance of the SELECT may have returned no row
/// (then the app had the value from elsewhere, and `$i.col` would be NULL). With `replay` the
/// captured values are replayed anyway, so a link is made only where the trace counted the rows
/// (`rows`) and every instance had one. A kind that is a variant of an endpoint with optional
/// statements also counts the requests of the other variants that hold all its statements
/// (`evidence`, cut down to its steps). Returns the reference and why it was made.
fn reference(kind: &RequestKind, inserted: &Inserted, step: usize, p: usize, replay: bool) -> Option<(String, String)> {
    let first = &kind.instances[0];
    let all: Vec<&super::requests::Request> = kind.instances.iter().chain(&kind.evidence).collect();
    let n = all.len();
    let pooled = if kind.evidence.is_empty() {
        String::new()
    } else {
        format!(
            ", {} of them of the kind's other variants, which run these steps and more",
            kind.evidence.len()
        )
    };
    let mut distinct: Vec<&Value> = Vec::new();
    for r in &all {
        let v = &r.steps[step].norm.values[p];
        if !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    // A value that equals the rowid an earlier INSERT … RETURNING made, in every request: the
    // new row's key, passed on. Two requests with different values are evidence; so is one
    // request whose value appeared nowhere before that INSERT (it was made there, not read).
    let made = match &first.steps[step].norm.values[p] {
        Value::Int(id) => inserted.before(*id, step).collect(),
        _ => Vec::new(),
    };
    for (i, col) in made {
        let i = *i;
        let made_here = |r: &super::requests::Request| {
            let a = &r.steps[step].norm.values[p];
            r.steps[i].rowid.is_some_and(|id| *a == Value::Int(id))
                && !r.steps[..i].iter().any(|e| e.norm.values.contains(a))
        };
        let linked = all.iter().all(|r| {
            let a = &r.steps[step].norm.values[p];
            r.steps[i].rowid.is_some_and(|id| *a == Value::Int(id))
        });
        if linked && (distinct.len() >= 2 || (n == 1 && made_here(first))) {
            return Some((
                format!("${i}.{col}"),
                format!(
                    "${i}.{col}: equal to the rowid step {i} inserted (its RETURNING {col}) in all {n} request(s){pooled} \
                     ({} different value(s){})",
                    distinct.len(),
                    if distinct.len() < 2 {
                        ", not seen before that step"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    if n < 2 || distinct.len() < 2 {
        return None;
    }
    for i in (0..step).rev() {
        let s = &first.steps[i];
        if s.verb != Verb::Select {
            continue;
        }
        for (col, k) in equality_params(&s.norm.text) {
            if !selects_column(&s.norm.text, &col) {
                continue;
            }
            let linked = all.iter().all(|r| {
                let a = &r.steps[step].norm.values[p];
                let b = r.steps[i].norm.values.get(k);
                a.is_known() && *a != Value::Null && Some(a) == b
            });
            if !linked {
                continue;
            }
            let rows: Vec<Option<i64>> = all.iter().map(|r| r.steps[i].rows).collect();
            if rows.contains(&Some(0)) {
                continue;
            }
            let counted = rows.iter().all(Option::is_some);
            if replay && !counted {
                continue;
            }
            return Some((
                format!("${i}.{col}"),
                format!(
                    "${i}.{col}: equal to the {col} that step {i} looked up in all {n} requests{pooled} ({} different values){}",
                    distinct.len(),
                    if counted {
                        ", and that step returned a row in every one"
                    } else {
                        "; the trace does not count returned rows, so a missing row would make it NULL"
                    }
                ),
            ));
        }
    }
    None
}

/// The column an `INSERT … RETURNING col` returns when it is the only one (`"t"."id"`, `id`):
/// the new row's key, which the trace records as the statement's `rowid`.
fn returned_rowid(text: &str) -> Option<String> {
    let words = sql::words(text);
    let at = words.iter().rposition(|w| w.eq_ignore_ascii_case("returning"))?;
    let list: Vec<&String> = words[at + 1..].iter().filter(|w| *w != ";").collect();
    // `"t"."id"` is three words (table, dot, column) or one, as the lexer splits it.
    let col = match list.as_slice() {
        [one] => one.as_str(),
        [_, dot, col] if dot.as_str() == "." => col.as_str(),
        _ => return None,
    };
    let col = sql::unquote(col);
    (!col.is_empty() && col != "*").then_some(col)
}

/// `col = ?k` (or `?k = col`) pairs of a normalized statement: (column, 0-based k).
fn equality_params(text: &str) -> Vec<(String, usize)> {
    let toks = sql::tokenize(text);
    let t = |i: usize| &text[toks[i].start..toks[i].end];
    let param = |i: usize| {
        (toks[i].kind == Kind::Param)
            .then(|| t(i)[1..].parse::<usize>().ok())
            .flatten()
            .map(|k| k - 1)
    };
    let mut out = Vec::new();
    for i in 1..toks.len().saturating_sub(1) {
        if t(i) != "=" {
            continue;
        }
        let (l, r) = (i - 1, i + 1);
        if let (true, Some(k)) = (matches!(toks[l].kind, Kind::Word | Kind::QuotedIdent), param(r)) {
            out.push((sql::unquote(t(l)), k));
        } else if let (Some(k), true) = (param(l), matches!(toks[r].kind, Kind::Word | Kind::QuotedIdent)) {
            out.push((sql::unquote(t(r)), k));
        }
    }
    out
}

/// Whether the select list (SELECT … FROM) names `col` or is `*`.
fn selects_column(text: &str, col: &str) -> bool {
    let words = sql::words(text);
    let Some(from) = words.iter().position(|w| w.eq_ignore_ascii_case("from")) else {
        return false;
    };
    let list = &words[1.min(from)..from];
    list.iter()
        .any(|w| w == "*" || sql::unquote(w).eq_ignore_ascii_case(col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_fixed_uniform_or_exponential() {
        assert_eq!(fit_time(&[2_000_000, 2_010_000, 1_990_000]).as_deref(), Some("2ms"));
        assert_eq!(fit_time(&[1_234_567, 1_234_000, 1_235_000]).as_deref(), Some("1235us"));
        assert_eq!(fit_time(&[1000, 2000]), None);
        let uni: Vec<u64> = (0..100).map(|i| 1_000_000 + i * 20_000).collect();
        assert!(fit_time(&uni).unwrap().starts_with("uniform("));
        let exp: Vec<u64> = (1..100)
            .map(|i| (-(1.0 - i as f64 / 100.0).ln() * 4e6) as u64)
            .collect();
        assert!(fit_time(&exp).unwrap().starts_with("exp("));
        assert_eq!(dur(3_000_000), "3ms");
        assert_eq!(dur(1_234_567), "1235us");
    }

    #[test]
    fn models_small_sets_ranges_lengths_and_sequences() {
        let v = |xs: &[Value]| model(&xs.iter().collect::<Vec<_>>(), true).value;
        let ints: Vec<Value> = (0..40).map(|i| Value::Int(i * 7 % 100)).collect();
        assert_eq!(v(&ints), gs("uniform(0, 98)"));
        let few: Vec<Value> = (0..40).map(|i| Value::Int(i % 3)).collect();
        assert_eq!(v(&few), gs("choice(0, 1, 2)"));
        let seq: Vec<Value> = (5..40).map(Value::Int).collect();
        assert_eq!(v(&seq), gs("seq(5)"));
        let text: Vec<Value> = (0..20).map(|i| Value::Text("x".repeat(3 + i))).collect();
        assert_eq!(v(&text), gs("text_lengths(3, 5, 7, 9, 11, 13, 14, 16, 18, 20, 22)"));
        let narrow: Vec<Value> = (0..20)
            .map(|i| Value::Text(format!("{i:x<w$}", w = 3 + i % 3)))
            .collect();
        assert_eq!(v(&narrow), gs("text(3, 5)"));
        let red = [Value::Redacted("int".into(), 2), Value::Redacted("int".into(), 3)];
        assert_eq!(
            model_redacted(&red.iter().collect::<Vec<_>>()).unwrap().value,
            gs("uniform(10, 999)")
        );
    }

    /// #28: a rowid alias or single-column unique key is never drawn by a generator that can
    /// repeat (`uniform(1, 2)` fitted to two ids): it is numbered from the first key the app
    /// inserted, after the keys an earlier populate line of the column takes, from 1 for text;
    /// a `seq` already right and all-NULL values (SQLite numbers them) are left alone.
    #[test]
    fn a_column_kept_distinct_gets_a_seq_from_its_first_key() {
        let col = |xs: &[Value]| xs.to_vec();
        let ids = col(&[Value::Int(2), Value::Int(1)]);
        let refs: Vec<&Value> = ids.iter().collect();
        let fitted = model(&refs, true).value;
        assert_eq!(fitted, gs("uniform(1, 2)"));
        let (g, start, why) = distinct_generator(&refs, "uniform(1, 2)", true, 2, &[]).unwrap();
        assert_eq!((g.as_str(), start), ("seq(1)", 1));
        assert_eq!(
            why,
            "seq(1): the rowid (INTEGER PRIMARY KEY), numbered from the first key the app inserted while setting \
             up (1–2); not `uniform(1, 2)`, which could repeat a key"
        );
        // One value fitted as a constant, a small set fitted as a choice: numbered too.
        let one = [Value::Int(7)];
        let one: Vec<&Value> = one.iter().collect();
        assert_eq!(distinct_generator(&one, "7", false, 1, &[]).unwrap().0, "seq(7)");
        let (g, start, why) = distinct_generator(&refs, "choice(1, 2)", false, 2, &[(0, 2), (2, 3)]).unwrap();
        assert_eq!((g.as_str(), start), ("seq(3)", 3));
        assert!(
            why.contains("a unique key, numbered after the keys an earlier populate line takes"),
            "{why}"
        );
        // Text keys: numbers from 1.
        let slugs = [Value::Text("a".into()), Value::Text("b".into())];
        let slugs: Vec<&Value> = slugs.iter().collect();
        let (g, _, why) = distinct_generator(&slugs, "text(1)", false, 2, &[]).unwrap();
        assert_eq!(g, "seq(1)");
        assert!(why.contains("not all integers"), "{why}");
        // Already numbered from the first key; all NULL: nothing to change.
        assert!(distinct_generator(&refs, "seq(1)", true, 2, &[(3, 5)]).is_none());
        let nulls = [Value::Null, Value::Null];
        let nulls: Vec<&Value> = nulls.iter().collect();
        assert!(distinct_generator(&nulls, "replay(NULL)", true, 2, &[]).is_none());
        // NULLs among keys are not drawn; the keys are numbered from the smallest.
        let mixed = [Value::Null, Value::Int(5), Value::Int(9)];
        let mixed: Vec<&Value> = mixed.iter().collect();
        assert_eq!(
            distinct_generator(&mixed, "uniform(5, 9)", true, 3, &[]).unwrap().0,
            "seq(5)"
        );
    }

    /// #28: sizes from the captured values: a column of ~2 kB bodies with a tenth of short ones
    /// keeps both in its deciles, and the note says where they came from.
    #[test]
    fn text_and_blob_lengths_follow_the_captured_values() {
        let mut bodies: Vec<Value> = (0..90).map(|i| Value::Text("b".repeat(1800 + i * 7))).collect();
        bodies.extend((0..10).map(|i| Value::Text("s".repeat(10 + i))));
        let out = model(&bodies.iter().collect::<Vec<_>>(), true);
        let toml::Value::String(g) = &out.value else {
            panic!("{out:?}")
        };
        assert!(g.starts_with("text_lengths(10, "), "{g}");
        assert!(g.ends_with(", 2423)"), "{g}");
        let median: usize = g.split(", ").nth(5).unwrap().parse().unwrap();
        assert!((2000..=2200).contains(&median), "{g}");
        let note = out.note.unwrap();
        assert!(
            note.contains("text lengths from the captured values (100 values: 10–2423"),
            "{note}"
        );
        let blobs: Vec<Value> = (0..30).map(|i| Value::Blob(vec![0; 100 + i * 10])).collect();
        let out = model(&blobs.iter().collect::<Vec<_>>(), true);
        assert_eq!(
            out.value,
            gs("blob_lengths(100, 130, 160, 190, 220, 250, 270, 300, 330, 360, 390)")
        );
        let red: Vec<Value> = (0..30).map(|i| Value::Redacted("text".into(), 2000 + i)).collect();
        let out = model_redacted(&red.iter().collect::<Vec<_>>()).unwrap();
        assert!(
            matches!(&out.value, toml::Value::String(g) if g.starts_with("text_lengths(2000, ")),
            "{out:?}"
        );
        assert_eq!(sized("text", &mut []).0, "text(0)");
        assert_eq!(sized("text", &mut [7, 7]).0, "text(7)");
    }

    #[test]
    fn returning_one_column_names_the_new_rows_key() {
        assert_eq!(
            returned_rowid(r#"INSERT INTO "rev" ("a") VALUES (?1) RETURNING "rev"."id""#).as_deref(),
            Some("id")
        );
        assert_eq!(
            returned_rowid("INSERT INTO t(a) VALUES (?1) RETURNING id").as_deref(),
            Some("id")
        );
        assert_eq!(returned_rowid("INSERT INTO t(a) VALUES (?1) RETURNING id, a"), None);
        assert_eq!(returned_rowid("INSERT INTO t(a) VALUES (?1)"), None);
    }

    #[test]
    fn equality_and_select_lists() {
        let q = "SELECT id, title FROM post WHERE id = ?1 AND ?2 = owner";
        assert_eq!(equality_params(q), vec![("id".into(), 0), ("owner".into(), 1)]);
        assert!(selects_column(q, "id"));
        assert!(!selects_column(q, "owner"));
        assert!(selects_column("SELECT * FROM t WHERE a = ?1", "a"));
    }
}
