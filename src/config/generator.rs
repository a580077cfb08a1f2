//! Generator expressions as a scenario writes them (`"uniform(1, 100)"`, `"$0.id"`):
//! parsed and checked once; `workload::params` instantiates them per worker.

use super::lengths::LengthTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// A parsed generator expression, as written in the scenario (kept for the report).
/// Its serde form is the scenario's text; `Compiled` is the parsed form (process workers).
#[derive(Clone, Debug)]
pub(crate) struct GeneratorSpec {
    source: String,
    pub(crate) kind: SpecKind,
}

/// `#[serde(with = "crate::config::generator::Compiled")]`: a `GeneratorSpec` with its parsed
/// kind, so the reader does not parse the expression again (nor rebuild zipf tables).
#[derive(Serialize, Deserialize)]
#[serde(remote = "GeneratorSpec")]
pub(crate) struct Compiled {
    source: String,
    kind: SpecKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Constant {
    Int(i64),
    Real(f64),
    Text(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum SpecKind {
    Const(Constant),
    Uniform {
        lo: i64,
        hi: i64,
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
    },
    Blob {
        min: usize,
        max: usize,
    },
    /// `text_lengths(l0, …, ln)`: text whose length follows these quantiles.
    TextLengths(Arc<LengthTable>),
    /// `blob_lengths(l0, …, ln)`: blobs whose length follows these quantiles.
    BlobLengths(Arc<LengthTable>),
    Seq {
        start: i64,
    },
    Now,
    WorkerId,
    /// `replay(v1, v2, ...)`: the values in order (worker w of W starts at w·n/W), cycling.
    Replay(Arc<[ReplayValue]>),
    /// Recently inserted rowids of `table`: the newest minus a zipfian rank below `window`.
    Latest {
        table: String,
        ranks: Arc<ZipfTable>,
    },
}

/// A `replay(...)` value: SQL literal syntax (`NULL`, `42`, `-1.5`, `'it''s'`, `x'0a'`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum ReplayValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The generators a scenario may name, with their argument forms (used in error messages).
pub(crate) const GENERATORS: &[&str] = &[
    "uniform(min, max)",
    "zipf(min, max[, theta])",
    "gaussian(mean, sd)",
    "choice(v1, v2, ...)",
    "text(len) | text(min, max)",
    "blob(len) | blob(min, max)",
    "text_lengths(l0, ..., ln)",
    "blob_lengths(l0, ..., ln)",
    "seq([start])",
    "now()",
    "worker_id()",
    "latest(table[, window])",
    "replay(v1, v2, ...)",
    "const(value)",
];

#[derive(Clone, Debug, PartialEq)]
enum Arg {
    /// Integers stay integers: never a trip through `f64` (exact beyond 2^53).
    Int(i64),
    /// A finite real (NaN and infinities are refused when parsed).
    Real(f64),
    Str(String),
}

impl GeneratorSpec {
    pub(crate) fn parse(source: &str) -> Result<Self, String> {
        let kind = parse_kind(source.trim())?;
        Ok(Self {
            source: source.trim().to_string(),
            kind,
        })
    }

    pub(crate) fn constant(value: Constant) -> Self {
        let source = match &value {
            Constant::Int(i) => i.to_string(),
            Constant::Real(r) => r.to_string(),
            Constant::Text(t) => format!("const('{t}')"),
        };
        Self {
            source,
            kind: SpecKind::Const(value),
        }
    }

    /// The table a `latest(table)` generator reads.
    /// The longest value a `text`/`blob` generator makes (for size estimates).
    pub(crate) fn max_len(&self) -> Option<usize> {
        match &self.kind {
            SpecKind::Text { max, .. } | SpecKind::Blob { max, .. } => Some(*max),
            SpecKind::TextLengths(t) | SpecKind::BlobLengths(t) => Some(t.max()),
            _ => None,
        }
    }

    pub(crate) fn latest_table(&self) -> Option<&str> {
        match &self.kind {
            SpecKind::Latest { table, .. } => Some(table),
            _ => None,
        }
    }
}

impl fmt::Display for GeneratorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for GeneratorSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.kind {
            SpecKind::Const(Constant::Int(i)) => s.serialize_i64(*i),
            SpecKind::Const(Constant::Real(r)) => s.serialize_f64(*r),
            _ => s.serialize_str(&self.source),
        }
    }
}

impl<'de> Deserialize<'de> for GeneratorSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawSpec::deserialize(d)?.into_spec().map_err(serde::de::Error::custom)
    }
}

/// A statement parameter: a generator, or a column of an earlier script step's first row.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    Gen(GeneratorSpec),
    /// `$N.column`: column `column` of step N's first row (NULL when it returned no row).
    Ref {
        step: usize,
        column: String,
    },
}

impl Param {
    fn parse_ref(src: &str) -> Result<Self, String> {
        let bad = || format!("`{src}` is not a step reference like \"$0.id\" (step number, dot, column name)");
        let rest = src.strip_prefix('$').ok_or_else(bad)?;
        let (step, column) = rest.split_once('.').ok_or_else(bad)?;
        let step = step.parse().map_err(|_| bad())?;
        if column.is_empty() {
            return Err(bad());
        }
        Ok(Param::Ref {
            step,
            column: column.to_string(),
        })
    }
}

impl Serialize for Param {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Param::Gen(g) => g.serialize(s),
            Param::Ref { step, column } => s.collect_str(&format_args!("${step}.{column}")),
        }
    }
}

impl<'de> Deserialize<'de> for Param {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = RawSpec::deserialize(d)?;
        match spec {
            RawSpec::Str(s) if s.trim_start().starts_with('$') => {
                Param::parse_ref(s.trim()).map_err(serde::de::Error::custom)
            }
            other => other.into_spec().map(Param::Gen).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSpec {
    Int(i64),
    Real(f64),
    Str(String),
}

impl RawSpec {
    fn into_spec(self) -> Result<GeneratorSpec, String> {
        match self {
            RawSpec::Int(i) => Ok(GeneratorSpec::constant(Constant::Int(i))),
            RawSpec::Real(r) if !r.is_finite() => Err(format!("{r} is not a parameter value: give a finite number")),
            RawSpec::Real(r) => Ok(GeneratorSpec::constant(Constant::Real(r))),
            RawSpec::Str(s) => GeneratorSpec::parse(&s),
        }
    }
}

/// `latest(table)` or `latest(table, window)`: the table is a bare or quoted name.
fn parse_latest(src: &str, args: &str) -> Result<SpecKind, String> {
    let bad = || format!("generator `{src}`: expected latest(table[, window]) with a positive window");
    let mut parts = args.split(',').map(str::trim);
    let table = parts.next().unwrap_or("").trim_matches(['\'', '"']).to_string();
    let window: u64 = match parts.next() {
        Some(w) => w.parse().ok().filter(|w| *w > 0).ok_or_else(bad)?,
        None => 1000,
    };
    if table.is_empty() || parts.next().is_some() || !table.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(bad());
    }
    Ok(SpecKind::Latest {
        table,
        ranks: Arc::new(ZipfTable::new(0, window as i64 - 1, 0.99)),
    })
}

/// `replay(...)` arguments: SQL literals separated by commas, at least one.
fn parse_replay(args: &str) -> Result<Vec<ReplayValue>, String> {
    let b = args.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let quoted = |i: &mut usize| -> Result<String, String> {
            let mut text = String::new();
            *i += 1;
            let start = *i;
            loop {
                match args[*i..].find('\'') {
                    Some(k) if args[*i + k + 1..].starts_with('\'') => {
                        text.push_str(&args[*i..*i + k + 1]);
                        *i += k + 2;
                    }
                    Some(k) => {
                        text.push_str(&args[*i..*i + k]);
                        *i += k + 1;
                        return Ok(text);
                    }
                    None => return Err(format!("unterminated string at `{}`", &args[start - 1..])),
                }
            }
        };
        let v = if b[i] == b'\'' {
            ReplayValue::Text(quoted(&mut i)?)
        } else if (b[i] == b'x' || b[i] == b'X') && b.get(i + 1) == Some(&b'\'') {
            i += 1;
            let hex = quoted(&mut i)?;
            if hex.len() % 2 != 0 {
                return Err(format!("blob x'{hex}' has an odd number of hex digits"));
            }
            let bytes = (0..hex.len() / 2)
                .map(|k| u8::from_str_radix(&hex[2 * k..2 * k + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| format!("blob x'{hex}' is not hex"))?;
            ReplayValue::Blob(bytes)
        } else {
            let end = args[i..].find(',').map_or(b.len(), |k| i + k);
            let token = args[i..end].trim();
            i = end;
            if token.eq_ignore_ascii_case("null") {
                ReplayValue::Null
            } else if let Ok(n) = token.parse::<i64>() {
                ReplayValue::Int(n)
            } else if let Ok(r) = token.parse::<f64>() {
                ReplayValue::Real(r)
            } else {
                return Err(format!("`{token}` is not a value (NULL, a number, 'text' or x'hex')"));
            }
        };
        out.push(v);
        skip_ws(&mut i);
        match b.get(i) {
            None => break,
            Some(b',') => i += 1,
            Some(_) => return Err(format!("expected `,` before `{}`", &args[i..])),
        }
    }
    if out.is_empty() {
        return Err("expected at least one value".into());
    }
    Ok(out)
}

fn parse_kind(src: &str) -> Result<SpecKind, String> {
    let (name, args) = split_call(src)?;
    if name == "latest" {
        return parse_latest(src, args);
    }
    if name == "replay" {
        return parse_replay(args)
            .map(|v| SpecKind::Replay(v.into()))
            .map_err(|e| format!("generator `replay(...)`: {e}"));
    }
    if name == "fill_in" {
        return Err(format!(
            "left to fill in by `litehammer import`: {}; replace it with a generator ({})",
            args.trim().trim_matches('\''),
            GENERATORS.join(", ")
        ));
    }
    let args = parse_args(args).map_err(|e| format!("generator `{src}`: {e}"))?;
    let bad = |form: &str| format!("generator `{src}`: expected {form}");
    match (name, args.as_slice()) {
        ("uniform", [a, b]) => {
            let (lo, hi) = (
                int(a).ok_or_else(|| bad("uniform(min, max) with integers"))?,
                int(b).ok_or_else(|| bad("uniform(min, max) with integers"))?,
            );
            ordered(src, lo, hi)?;
            Ok(SpecKind::Uniform { lo, hi })
        }
        ("uniform", _) => Err(bad("uniform(min, max)")),
        ("zipf", [a, b, rest @ ..]) if rest.len() <= 1 => {
            let form = "zipf(min, max[, theta]) with integer bounds";
            let (lo, hi) = (int(a).ok_or_else(|| bad(form))?, int(b).ok_or_else(|| bad(form))?);
            ordered(src, lo, hi)?;
            let theta = match rest.first() {
                Some(a) => num(a).ok_or_else(|| bad(form))?,
                None => 0.99,
            };
            if !(theta > 0.0 && theta < 1.0) {
                return Err(format!(
                    "generator `{src}`: theta must be between 0 and 1 (exclusive), got {theta}"
                ));
            }
            Ok(SpecKind::Zipf(Arc::new(ZipfTable::new(lo, hi, theta))))
        }
        ("zipf", _) => Err(bad("zipf(min, max[, theta])")),
        ("gaussian", [a, b]) if num(a).is_some() && num(b).is_some() => {
            let (mean, sd) = (num(a).unwrap_or_default(), num(b).unwrap_or_default());
            if sd < 0.0 {
                return Err(format!("generator `{src}`: sd must not be negative"));
            }
            Ok(SpecKind::Gaussian { mean, sd })
        }
        ("gaussian", _) => Err(bad("gaussian(mean, sd) with numbers")),
        ("choice", values) if !values.is_empty() => Ok(SpecKind::Choice(
            values.iter().map(to_constant).collect::<Vec<_>>().into(),
        )),
        ("choice", _) => Err(bad("choice(v1, v2, ...) with at least one value")),
        ("text" | "blob", [len]) => sized(name, src, len, len),
        ("text" | "blob", [min, max]) => sized(name, src, min, max),
        ("text" | "blob", _) => Err(bad(&format!("{name}(len) or {name}(min, max)"))),
        ("text_lengths" | "blob_lengths", qs) => {
            let form = format!("{name}(l0, ..., ln) with integer lengths");
            let lens = qs
                .iter()
                .map(int)
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(|| bad(&form))?;
            let table = Arc::new(LengthTable::new(lens).map_err(|e| format!("generator `{src}`: {e}"))?);
            Ok(if name == "text_lengths" {
                SpecKind::TextLengths(table)
            } else {
                SpecKind::BlobLengths(table)
            })
        }
        ("seq", []) => Ok(SpecKind::Seq { start: 1 }),
        ("seq", [a]) => Ok(SpecKind::Seq {
            start: int(a).ok_or_else(|| bad("seq([start]) with an integer"))?,
        }),
        ("seq", _) => Err(bad("seq([start])")),
        ("now", []) => Ok(SpecKind::Now),
        ("now", _) => Err(bad("now() without arguments")),
        ("worker_id", []) => Ok(SpecKind::WorkerId),
        ("worker_id", _) => Err(bad("worker_id() without arguments")),
        ("const", [a]) => Ok(SpecKind::Const(to_constant(a))),
        ("const", _) => Err(bad("const(value)")),
        _ => Err(format!(
            "unknown generator `{name}` in `{src}`; known: {}",
            GENERATORS.join(", ")
        )),
    }
}

fn split_call(src: &str) -> Result<(&str, &str), String> {
    let open = src.find('(');
    match open {
        Some(open) if src.ends_with(')') => {
            let name = src[..open].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`{src}` is not a generator call like `uniform(1, 100)`"));
            }
            Ok((name, &src[open + 1..src.len() - 1]))
        }
        _ => Err(format!(
            "`{src}` is not a generator call like `uniform(1, 100)`; known: {}",
            GENERATORS.join(", ")
        )),
    }
}

fn parse_args(text: &str) -> Result<Vec<Arg>, String> {
    let mut args = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (arg, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').ok_or("unterminated quoted string")?;
            (Arg::Str(quoted[..end].to_string()), quoted[end + 1..].trim_start())
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let token = rest[..end].trim();
            let num = match token.parse::<i64>() {
                Ok(i) => Arg::Int(i),
                Err(_) => match token.parse::<f64>() {
                    Ok(f) if f.is_finite() => Arg::Real(f),
                    Ok(_) => return Err(format!("`{token}` is not a finite number")),
                    Err(_) => return Err(format!("`{token}` is neither a number nor a 'quoted string'")),
                },
            };
            (num, &rest[end..])
        };
        args.push(arg);
        rest = match after.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if after.trim().is_empty() => "",
            None => return Err(format!("expected `,` before `{after}`")),
        };
    }
    Ok(args)
}

fn int(arg: &Arg) -> Option<i64> {
    match arg {
        Arg::Int(i) => Some(*i),
        _ => None,
    }
}

fn num(arg: &Arg) -> Option<f64> {
    match arg {
        Arg::Int(i) => Some(*i as f64),
        Arg::Real(r) => Some(*r),
        Arg::Str(_) => None,
    }
}

fn to_constant(arg: &Arg) -> Constant {
    match arg {
        Arg::Int(i) => Constant::Int(*i),
        Arg::Real(r) => Constant::Real(*r),
        Arg::Str(s) => Constant::Text(s.clone()),
    }
}

fn ordered(src: &str, lo: i64, hi: i64) -> Result<(), String> {
    if lo > hi {
        return Err(format!("generator `{src}`: min {lo} is greater than max {hi}"));
    }
    Ok(())
}

fn sized(name: &str, src: &str, min: &Arg, max: &Arg) -> Result<SpecKind, String> {
    let form = format!("{name}(len) or {name}(min, max) with non-negative integers");
    let as_len = |a: &Arg| int(a).filter(|v| *v >= 0).map(|v| v as usize);
    let (min, max) = (
        as_len(min).ok_or_else(|| format!("generator `{src}`: expected {form}"))?,
        as_len(max).ok_or_else(|| format!("generator `{src}`: expected {form}"))?,
    );
    if min > max {
        return Err(format!("generator `{src}`: min {min} is greater than max {max}"));
    }
    if max > super::lengths::MAX_LEN {
        return Err(format!("generator `{src}`: length is limited to 16 MiB"));
    }
    Ok(if name == "text" {
        SpecKind::Text { min, max }
    } else {
        SpecKind::Blob { min, max }
    })
}

/// YCSB's zipfian generator (Gray et al., "Quickly generating billion-record synthetic databases").
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ZipfTable {
    lo: i64,
    items: f64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl ZipfTable {
    fn new(lo: i64, hi: i64, theta: f64) -> Self {
        // In i128: `hi - lo` of the full i64 range does not fit an i64.
        let items = (hi as i128 - lo as i128) as f64 + 1.0;
        let zetan = zeta(items as u64, theta);
        let zeta2 = zeta(2, theta);
        let eta = (1.0 - (2.0 / items).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Self {
            lo,
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
        }
    }

    /// The value for one uniform draw `u` in [0, 1).
    #[inline]
    pub(crate) fn sample_at(&self, u: f64) -> i64 {
        let uz = u * self.zetan;
        let rank = if uz < 1.0 {
            0.0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1.0
        } else {
            (self.items * (self.eta * u - self.eta + 1.0).powf(self.alpha)).floor()
        };
        // The rank as an unsigned offset from `lo` (ranks of a 2^64-value range exceed i64).
        self.lo.wrapping_add(rank.min(self.items - 1.0) as u64 as i64)
    }
}

/// Generalized harmonic number H(n, theta): exact up to 10^7 terms, then an integral tail.
fn zeta(n: u64, theta: f64) -> f64 {
    const EXACT: u64 = 10_000_000;
    let exact_n = n.min(EXACT);
    let mut sum: f64 = (1..=exact_n).map(|i| (i as f64).powf(-theta)).sum();
    if n > EXACT {
        let (a, b) = (EXACT as f64 + 0.5, n as f64 + 0.5);
        sum += (b.powf(1.0 - theta) - a.powf(1.0 - theta)) / (1.0 - theta);
    }
    sum
}
