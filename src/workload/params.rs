//! Parameter generators at run time: one instance per worker, producing values without
//! allocating per call. The expressions themselves are parsed in `config::generator`.

use super::rng::Rng;
use crate::config::generator::SpecKind;
pub(crate) use crate::config::generator::*;
use crate::config::lengths::LengthTable;
use rusqlite::types::ValueRef;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The newest rowid of each table a `latest(table)` generator reads, shared by the workers
/// of a run (they raise it after their inserts into that table).
pub(crate) type LatestRowids = [(String, Arc<AtomicI64>)];

/// A per-worker instance. `worker` is the worker's index among `workers` in the run;
/// `latest` holds the shared newest rowids (a table missing there reads as rowid 1).
pub(crate) fn instantiate(
    spec: &GeneratorSpec,
    rng: &mut Rng,
    worker: u64,
    workers: u64,
    latest: &LatestRowids,
) -> Generator {
    let state = match &spec.kind {
        SpecKind::Const(c) => State::Const(c.clone()),
        SpecKind::Uniform { lo, hi } => State::Uniform {
            lo: *lo,
            // 0 stands for the full 2^64 range.
            span: (hi.wrapping_sub(*lo) as u64).wrapping_add(1),
        },
        SpecKind::Zipf(table) => State::Zipf(table.clone()),
        SpecKind::Gaussian { mean, sd } => State::Gaussian { mean: *mean, sd: *sd },
        SpecKind::Choice(values) => State::Choice(values.clone()),
        SpecKind::Text { min, max } => State::Text {
            min: *min,
            max: *max,
            pool: random_pool(rng, *max, true),
        },
        SpecKind::Blob { min, max } => State::Blob {
            min: *min,
            max: *max,
            pool: random_pool(rng, *max, false),
        },
        SpecKind::TextLengths(table) => State::TextLengths {
            pool: random_pool(rng, table.max(), true),
            table: table.clone(),
        },
        SpecKind::BlobLengths(table) => State::BlobLengths {
            pool: random_pool(rng, table.max(), false),
            table: table.clone(),
        },
        SpecKind::Seq { start } => State::Seq {
            next: start.checked_add(worker as i64),
            step: workers.max(1) as i64,
        },
        SpecKind::Now => State::Now,
        SpecKind::WorkerId => State::Const(Constant::Int(worker as i64)),
        SpecKind::Replay(values) => State::Replay {
            next: (values.len() as u64 * worker / workers.max(1)) as usize,
            values: values.clone(),
        },
        SpecKind::Latest { table, ranks } => State::Latest {
            newest: latest
                .iter()
                .find(|(t, _)| t == table)
                .map_or_else(|| Arc::new(AtomicI64::new(1)), |(_, rowid)| rowid.clone()),
            ranks: ranks.clone(),
        },
    };
    Generator { state }
}

fn random_pool(rng: &mut Rng, max: usize, text: bool) -> Box<[u8]> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789";
    let len = max + 4096;
    (0..len)
        .map(|_| {
            let r = rng.next_u64();
            if text {
                ALPHABET[(r % ALPHABET.len() as u64) as usize]
            } else {
                r as u8
            }
        })
        .collect()
}

/// One worker's instance of a generator.
pub(crate) struct Generator {
    state: State,
}

enum State {
    Const(Constant),
    Uniform {
        lo: i64,
        span: u64,
    },
    Zipf(Arc<ZipfTable>),
    Gaussian {
        mean: f64,
        sd: f64,
    },
    Choice(Arc<[Constant]>),
    Text {
        min: usize,
        max: usize,
        pool: Box<[u8]>,
    },
    Blob {
        min: usize,
        max: usize,
        pool: Box<[u8]>,
    },
    TextLengths {
        table: Arc<LengthTable>,
        pool: Box<[u8]>,
    },
    BlobLengths {
        table: Arc<LengthTable>,
        pool: Box<[u8]>,
    },
    Seq {
        /// `None` once the sequence passed i64::MAX.
        next: Option<i64>,
        step: i64,
    },
    Now,
    Replay {
        values: Arc<[ReplayValue]>,
        next: usize,
    },
    Latest {
        newest: Arc<AtomicI64>,
        ranks: Arc<ZipfTable>,
    },
}

impl Generator {
    /// The next value; text and blobs borrow from a per-worker random pool (no copy).
    #[inline]
    pub(crate) fn next(&mut self, rng: &mut Rng) -> ValueRef<'_> {
        match &mut self.state {
            State::Const(c) => constant_ref(c),
            State::Uniform { lo, span: 0 } => ValueRef::Integer(lo.wrapping_add(rng.next_u64() as i64)),
            State::Uniform { lo, span } => ValueRef::Integer(lo.wrapping_add(rng.below(*span) as i64)),
            State::Zipf(table) => ValueRef::Integer(table.sample_at(rng.unit())),
            State::Gaussian { mean, sd } => ValueRef::Integer((*mean + *sd * standard_normal(rng)).round() as i64),
            State::Choice(values) => {
                let i = rng.below(values.len() as u64) as usize;
                constant_ref(&values[i])
            }
            State::Text { min, max, pool } => ValueRef::Text(slice_of(rng, pool, *min, *max)),
            State::Blob { min, max, pool } => ValueRef::Blob(slice_of(rng, pool, *min, *max)),
            State::TextLengths { table, pool } => {
                let len = table.sample_at(rng.unit());
                ValueRef::Text(slice_of(rng, pool, len, len))
            }
            State::BlobLengths { table, pool } => {
                let len = table.sample_at(rng.unit());
                ValueRef::Blob(slice_of(rng, pool, len, len))
            }
            // Past i64::MAX, NULL: never a wrap to negative numbers.
            State::Seq { next, step } => match *next {
                Some(v) => {
                    *next = v.checked_add(*step);
                    ValueRef::Integer(v)
                }
                None => ValueRef::Null,
            },
            State::Now => ValueRef::Integer(unix_millis()),
            State::Replay { values, next } => {
                let i = *next % values.len();
                *next = i + 1;
                match &values[i] {
                    ReplayValue::Null => ValueRef::Null,
                    ReplayValue::Int(v) => ValueRef::Integer(*v),
                    ReplayValue::Real(v) => ValueRef::Real(*v),
                    ReplayValue::Text(t) => ValueRef::Text(t.as_bytes()),
                    ReplayValue::Blob(b) => ValueRef::Blob(b),
                }
            }
            State::Latest { newest, ranks } => {
                ValueRef::Integer((newest.load(Ordering::Relaxed) - ranks.sample_at(rng.unit())).max(1))
            }
        }
    }
}

fn constant_ref(c: &Constant) -> ValueRef<'_> {
    match c {
        Constant::Int(i) => ValueRef::Integer(*i),
        Constant::Real(r) => ValueRef::Real(*r),
        Constant::Text(t) => ValueRef::Text(t.as_bytes()),
    }
}

#[inline]
fn slice_of<'a>(rng: &mut Rng, pool: &'a [u8], min: usize, max: usize) -> &'a [u8] {
    let len = min + rng.below((max - min) as u64 + 1) as usize;
    let start = rng.below((pool.len() - len) as u64 + 1) as usize;
    &pool[start..start + len]
}

/// Box-Muller transform.
fn standard_normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.unit();
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::FromSql;

    fn sample(spec: &str, n: usize, seed: u64) -> Vec<rusqlite::types::Value> {
        let spec = GeneratorSpec::parse(spec).unwrap();
        let mut rng = Rng::new(seed);
        let mut g = instantiate(&spec, &mut rng, 0, 1, &[]);
        (0..n)
            .map(|_| rusqlite::types::Value::column_result(g.next(&mut rng)).unwrap())
            .collect()
    }

    fn ints(values: &[rusqlite::types::Value]) -> Vec<i64> {
        values
            .iter()
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => *i,
                other => panic!("not an integer: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn uniform_is_inclusive_and_reproducible() {
        let a = ints(&sample("uniform(3, 5)", 2000, 1));
        assert!(a.iter().all(|v| (3..=5).contains(v)));
        for v in 3..=5 {
            assert!(a.contains(&v), "{v} never drawn");
        }
        assert_eq!(a, ints(&sample("uniform(3, 5)", 2000, 1)));
        assert_ne!(a, ints(&sample("uniform(3, 5)", 2000, 2)));
    }

    #[test]
    fn zipf_prefers_low_ranks() {
        let a = ints(&sample("zipf(1, 1000, 0.99)", 20_000, 3));
        assert!(a.iter().all(|v| (1..=1000).contains(v)));
        let ones = a.iter().filter(|v| **v == 1).count();
        let tail = a.iter().filter(|v| **v > 500).count();
        assert!(ones > tail / 10, "key 1 drawn {ones} times, keys > 500 {tail} times");
        assert!(ones > 1000, "the hottest key should take several percent, got {ones}");
    }

    #[test]
    fn text_lengths_within_bounds() {
        for v in sample("text(5, 9)", 500, 4) {
            match v {
                rusqlite::types::Value::Text(t) => assert!((5..=9).contains(&t.len()), "{t:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn length_distributions_give_the_quantiles_lengths() {
        let lens = |spec: &str| -> Vec<usize> {
            sample(spec, 4000, 7)
                .into_iter()
                .map(|v| match v {
                    rusqlite::types::Value::Text(t) => t.len(),
                    rusqlite::types::Value::Blob(b) => b.len(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        // Half of the rows short (10-20), half about 2 kB (1900-2300).
        for spec in ["text_lengths(10, 20, 1900, 2300)", "blob_lengths(10, 20, 1900, 2300)"] {
            let l = lens(spec);
            assert!(l.iter().all(|n| (10..=2300).contains(n)), "{spec}");
            let long = l.iter().filter(|n| **n >= 1900).count();
            assert!((1200..=1470).contains(&long), "{spec}: {long} of 4000 at least 1900");
            let short = l.iter().filter(|n| **n <= 20).count();
            assert!((1200..=1470).contains(&short), "{spec}: {short} of 4000 at most 20");
        }
        let spec = GeneratorSpec::parse("text_lengths(5, 9, 2000)").unwrap();
        assert_eq!(spec.max_len(), Some(2000));
        for (bad, needle) in [
            ("text_lengths()", "at least one"),
            ("text_lengths(9, 5)", "must not decrease"),
            ("blob_lengths(1, 'x')", "integer lengths"),
        ] {
            let err = GeneratorSpec::parse(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn seq_interleaves_workers() {
        let spec = GeneratorSpec::parse("seq(10)").unwrap();
        let mut rng = Rng::new(0);
        let mut w1 = instantiate(&spec, &mut rng, 1, 3, &[]);
        let got: Vec<rusqlite::types::Value> = (0..3)
            .map(|_| rusqlite::types::Value::column_result(w1.next(&mut rng)).unwrap())
            .collect();
        assert_eq!(ints(&got), vec![11, 14, 17]);
    }

    #[test]
    fn gaussian_and_choice() {
        let g = ints(&sample("gaussian(100, 10)", 5000, 5));
        let mean = g.iter().sum::<i64>() as f64 / g.len() as f64;
        assert!((mean - 100.0).abs() < 2.0, "mean {mean}");
        let c = sample("choice(1, 'x', 2.5)", 300, 6);
        assert!(c.contains(&rusqlite::types::Value::Text("x".into())));
        assert!(c.contains(&rusqlite::types::Value::Real(2.5)));
    }

    #[test]
    fn replay_cycles_in_order_from_each_workers_share() {
        use rusqlite::types::Value as V;
        let spec = GeneratorSpec::parse("replay(1, -2.5, 'it''s, x', NULL, x'0aff')").unwrap();
        let mut rng = Rng::new(0);
        let mut w0 = instantiate(&spec, &mut rng, 0, 1, &[]);
        let got: Vec<V> = (0..6).map(|_| V::column_result(w0.next(&mut rng)).unwrap()).collect();
        assert_eq!(
            got,
            vec![
                V::Integer(1),
                V::Real(-2.5),
                V::Text("it's, x".into()),
                V::Null,
                V::Blob(vec![10, 255]),
                V::Integer(1)
            ]
        );
        let mut w1 = instantiate(&spec, &mut rng, 1, 2, &[]);
        assert_eq!(V::column_result(w1.next(&mut rng)).unwrap(), V::Text("it's, x".into()));
        for (bad, needle) in [
            ("replay()", "at least one"),
            ("replay('x)", "unterminated"),
            ("replay(1 2)", "not a value"),
            ("replay(x'0')", "odd"),
            (
                "fill_in('the key of step 1')",
                "left to fill in by `litehammer import`: the key of step 1",
            ),
        ] {
            let err = GeneratorSpec::parse(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn latest_reads_the_shared_newest_rowid() {
        let spec = GeneratorSpec::parse("latest(post, 10)").unwrap();
        assert_eq!(spec.latest_table(), Some("post"));
        let newest = Arc::new(AtomicI64::new(500));
        let shared = [("post".to_string(), newest.clone())];
        let mut rng = Rng::new(3);
        let mut g = instantiate(&spec, &mut rng, 0, 1, &shared);
        let draw = |g: &mut Generator, rng: &mut Rng| match g.next(rng) {
            ValueRef::Integer(i) => i,
            other => panic!("{other:?}"),
        };
        let first: Vec<i64> = (0..200).map(|_| draw(&mut g, &mut rng)).collect();
        assert!(first.iter().all(|v| (491..=500).contains(v)), "{first:?}");
        assert!(
            first.iter().filter(|v| **v == 500).count() > 20,
            "the newest row is the hottest"
        );
        newest.store(900, Ordering::Relaxed);
        assert!((891..=900).contains(&draw(&mut g, &mut rng)));
        for bad in ["latest()", "latest(post, 0)", "latest(post, x)", "latest(a b)"] {
            assert!(GeneratorSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn params_are_generators_or_step_references() {
        let p: Vec<Param> = serde_json::from_str(r#"["$1.id", "uniform(1, 2)", 5]"#).unwrap();
        assert!(matches!(&p[0], Param::Ref { step: 1, column } if column == "id"));
        assert!(matches!(&p[1], Param::Gen(_)));
        assert!(
            serde_json::from_str::<Param>(r#""$x.id""#)
                .unwrap_err()
                .to_string()
                .contains("step reference")
        );
        assert!(serde_json::from_str::<Param>(r#""$0.""#).is_err());
    }

    #[test]
    fn bad_generators_are_rejected_with_reasons() {
        for (src, needle) in [
            ("unifrom(1, 2)", "unknown generator `unifrom`"),
            ("uniform(1)", "uniform(min, max)"),
            ("uniform(5, 1)", "greater than max"),
            ("text(-1)", "non-negative"),
            ("zipf(1, 10, 1.5)", "theta"),
            ("uniform(1, 2", "not a generator call"),
            ("choice()", "at least one"),
            ("uniform(a, 2)", "neither a number"),
        ] {
            let err = GeneratorSpec::parse(src).unwrap_err();
            assert!(err.contains(needle), "{src}: {err}");
        }
    }

    /// Property tests (issue #14): for random valid arguments, every generator stays within
    /// its documented range (docs/generators.md), integers exactly, without panics.
    mod properties {
        use super::*;
        use proptest::prelude::{ProptestConfig, Strategy, TestCaseError, any, prop_assert, prop_oneof, proptest};

        fn values(spec: &str, n: usize, seed: u64, worker: u64, workers: u64) -> Vec<rusqlite::types::Value> {
            let spec = GeneratorSpec::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            let mut rng = Rng::new(seed);
            let mut g = instantiate(&spec, &mut rng, worker, workers, &[]);
            (0..n)
                .map(|_| rusqlite::types::Value::column_result(g.next(&mut rng)).unwrap())
                .collect()
        }

        fn int_values(spec: &str, n: usize, seed: u64) -> Vec<i64> {
            ints(&values(spec, n, seed, 0, 1))
        }

        /// Bounds anywhere in i64, often near its ends and around 2^53.
        fn bound() -> impl Strategy<Value = i64> {
            prop_oneof![
                any::<i64>(),
                (-1000i64..1000),
                (0i64..1000).prop_map(|d| i64::MAX - d),
                (0i64..1000).prop_map(|d| i64::MIN + d),
                (0i64..1000).prop_map(|d| (1i64 << 53) + d),
            ]
        }

        fn ordered_pair() -> impl Strategy<Value = (i64, i64)> {
            (bound(), bound()).prop_map(|(a, b)| (a.min(b), a.max(b)))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn uniform_stays_within_its_bounds((lo, hi) in ordered_pair(), seed in any::<u64>()) {
                for v in int_values(&format!("uniform({lo}, {hi})"), 200, seed) {
                    prop_assert!((lo..=hi).contains(&v), "uniform({lo}, {hi}) gave {v}");
                }
            }

            #[test]
            fn seq_counts_up_from_its_start_and_never_wraps(start in bound(), worker in 0u64..8, extra in 1u64..8, seed in any::<u64>()) {
                let workers = worker + extra;
                let mut last = None;
                for v in values(&format!("seq({start})"), 50, seed, worker, workers) {
                    match v {
                        rusqlite::types::Value::Integer(i) => {
                            prop_assert!(i >= start, "seq({start}) gave {i}");
                            prop_assert!(last.is_none_or(|l| i > l), "seq({start}) went from {last:?} to {i}");
                            last = Some(i);
                        }
                        rusqlite::types::Value::Null => {}
                        other => prop_assert!(false, "seq gave {other:?}"),
                    }
                }
            }

            #[test]
            fn choice_returns_one_of_its_values(vals in proptest::collection::vec(any::<i64>(), 1..6), seed in any::<u64>()) {
                let list: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
                for v in int_values(&format!("choice({})", list.join(", ")), 100, seed) {
                    prop_assert!(vals.contains(&v), "choice gave {v}, not one of {vals:?}");
                }
            }

            #[test]
            fn text_and_blob_lengths_stay_within_min_max(min in 0usize..300, extra in 0usize..300, seed in any::<u64>()) {
                let max = min + extra;
                for kind in ["text", "blob"] {
                    for v in values(&format!("{kind}({min}, {max})"), 50, seed, 0, 1) {
                        let len = match v {
                            rusqlite::types::Value::Text(t) => t.len(),
                            rusqlite::types::Value::Blob(b) => b.len(),
                            other => return Err(TestCaseError::fail(format!("{kind} gave {other:?}"))),
                        };
                        prop_assert!((min..=max).contains(&len), "{kind}({min}, {max}) gave length {len}");
                    }
                }
            }

            #[test]
            fn gaussian_stays_near_its_mean(mean in -1e12f64..1e12, sd in 0f64..1e6, seed in any::<u64>()) {
                for v in int_values(&format!("gaussian({mean}, {sd})"), 100, seed) {
                    prop_assert!((v as f64 - mean).abs() <= 12.0 * sd + 1.0, "gaussian({mean}, {sd}) gave {v}");
                }
            }
        }

        proptest! {
            // The zipf table sums up to 10^7 terms: fewer cases.
            #![proptest_config(ProptestConfig::with_cases(6))]

            #[test]
            fn zipf_stays_within_its_bounds((lo, hi) in ordered_pair(), theta in 0.01f64..0.99, seed in any::<u64>()) {
                for v in int_values(&format!("zipf({lo}, {hi}, {theta})"), 200, seed) {
                    prop_assert!((lo..=hi).contains(&v), "zipf({lo}, {hi}, {theta}) gave {v}");
                }
            }
        }

        #[test]
        fn the_issue_examples() {
            assert!(
                int_values("uniform(9007199254740993, 9007199254740993)", 10, 1)
                    .iter()
                    .all(|v| *v == 9007199254740993)
            );
            let full = int_values("zipf(-9223372036854775808, 9223372036854775807)", 200, 1);
            assert!(
                full.iter().any(|v| *v != i64::MAX),
                "zipf over all of i64 returned only the maximum"
            );
            for bad in ["gaussian(nan, nan)", "choice(1e400)", "gaussian(0, inf)", "const(inf)"] {
                assert!(GeneratorSpec::parse(bad).is_err(), "{bad} parsed");
            }
            let seq = values("seq(9223372036854775807)", 3, 1, 0, 1);
            assert_eq!(seq[0], rusqlite::types::Value::Integer(i64::MAX));
            assert!(seq[1..].iter().all(|v| *v == rusqlite::types::Value::Null), "{seq:?}");
        }
    }
}
