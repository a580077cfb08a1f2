//! Service-level objectives for `litehammer capacity`: `p99<200ms`, `p50<=20ms`,
//! `errors<0.1%`. Parsed once from `--slo`; evaluated on a run's figures by
//! `analysis/capacity.rs`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The lowest and highest offered rates a capacity search tries (requests per second, all
/// groups together).
pub(crate) const RATE_FLOOR: f64 = 1.0;
pub(crate) const RATE_CEILING: f64 = 1_000_000.0;

/// One objective a rate must meet.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Slo {
    /// The latency percentile `p` (0 < p < 100) of requests, from their intended start, is
    /// below `limit`.
    Latency { percentile: f64, limit: Duration },
    /// The share of requests (and of their statements) that failed is below `share` (0..1).
    Errors { share: f64 },
}

impl FromStr for Slo {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let (name, limit) = s
            .split_once("<=")
            .or_else(|| s.split_once('<'))
            .ok_or_else(|| format!("`{raw}`: write an objective as `p99<200ms` or `errors<0.1%`"))?;
        if name.eq_ignore_ascii_case("errors") {
            let pct = limit
                .strip_suffix('%')
                .ok_or_else(|| format!("`{raw}`: the error share is a percentage, e.g. `errors<0.1%`"))?;
            let pct: f64 = pct.parse().map_err(|_| format!("`{raw}`: `{pct}` is not a number"))?;
            if !(pct > 0.0 && pct <= 100.0) {
                return Err(format!("`{raw}`: the error share must be above 0% and at most 100%"));
            }
            return Ok(Slo::Errors { share: pct / 100.0 });
        }
        let p = name
            .strip_prefix('p')
            .or_else(|| name.strip_prefix('P'))
            .ok_or_else(|| format!("`{raw}`: the objective is a percentile (`p50`, `p99`, `p99.9`) or `errors`"))?;
        let percentile: f64 = p
            .parse()
            .map_err(|_| format!("`{raw}`: `{name}` is not a percentile such as p99 or p99.9"))?;
        if !(percentile > 0.0 && percentile < 100.0) {
            return Err(format!(
                "`{raw}`: the percentile must be above 0 and below 100, got {percentile}"
            ));
        }
        let limit: crate::config::duration::DurationValue = limit.parse().map_err(|e| format!("`{raw}`: {e}"))?;
        if limit.0.is_zero() {
            return Err(format!("`{raw}`: the latency limit must be greater than zero"));
        }
        crate::config::limits::wait(limit.0).map_err(|e| format!("`{raw}`: {e}"))?;
        Ok(Slo::Latency {
            percentile,
            limit: limit.0,
        })
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slo::Latency { percentile, limit } => {
                write!(f, "p{percentile} < {}", humantime::format_duration(*limit))
            }
            Slo::Errors { share } => write!(f, "errors < {}%", share * 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_and_print() {
        let p99: Slo = "p99<200ms".parse().unwrap();
        assert_eq!(
            p99,
            Slo::Latency {
                percentile: 99.0,
                limit: Duration::from_millis(200)
            }
        );
        assert_eq!(p99.to_string(), "p99 < 200ms");
        let p999: Slo = "p99.9 <= 1s".parse().unwrap();
        assert!(matches!(p999, Slo::Latency { percentile, .. } if percentile == 99.9));
        let errors: Slo = "errors<0.1%".parse().unwrap();
        assert_eq!(errors, Slo::Errors { share: 0.001 });
        assert_eq!(errors.to_string(), "errors < 0.1%");
    }

    #[test]
    fn bad_objectives_say_what_is_wrong() {
        for (bad, why) in [
            ("p99", "write an objective"),
            ("p100<1s", "below 100"),
            ("p0<1s", "above 0"),
            ("px<1s", "not a percentile"),
            ("latency<1s", "is a percentile"),
            ("p99<0ms", "greater than zero"),
            ("p99<fast", "fast"),
            ("errors<1", "percentage"),
            ("errors<0%", "above 0%"),
            ("errors<x%", "not a number"),
            ("p99<400d", "too long"),
        ] {
            let err = bad.parse::<Slo>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
