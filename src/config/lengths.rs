//! `text_lengths(l0, …, ln)` and `blob_lengths(l0, …, ln)`: text or blobs whose length follows
//! an observed distribution, given as its quantiles at evenly spaced ranks (l0 the shortest,
//! ln the longest; `litehammer import` writes the lengths a trace or a copy of the app's
//! database holds). A draw takes a uniform rank and interpolates linearly between the two
//! quantiles around it: the inverse of a piecewise-linear distribution function.

use serde::{Deserialize, Serialize};

/// Most quantiles a length distribution may list (101: every percentile).
pub(crate) const MAX_QUANTILES: usize = 101;

/// Longest length a text or blob generator may make.
pub(crate) const MAX_LEN: usize = 16 << 20;

/// The quantiles of a length distribution: non-decreasing, at least one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LengthTable {
    quantiles: Vec<usize>,
}

impl LengthTable {
    /// From the generator's arguments (already split): non-negative integers, non-decreasing.
    pub(crate) fn new(quantiles: Vec<i64>) -> Result<Self, String> {
        if quantiles.is_empty() {
            return Err("expected at least one length".into());
        }
        if quantiles.len() > MAX_QUANTILES {
            return Err(format!(
                "{} lengths given; at most {MAX_QUANTILES} (one per percentile)",
                quantiles.len()
            ));
        }
        if let Some(neg) = quantiles.iter().find(|l| **l < 0) {
            return Err(format!("length {neg} is negative"));
        }
        if let Some(w) = quantiles.windows(2).find(|w| w[1] < w[0]) {
            return Err(format!(
                "lengths must not decrease (they are quantiles, shortest first): {} comes after {}",
                w[1], w[0]
            ));
        }
        let quantiles: Vec<usize> = quantiles.into_iter().map(|l| l as usize).collect();
        if quantiles.last().is_some_and(|l| *l > MAX_LEN) {
            return Err("length is limited to 16 MiB".into());
        }
        Ok(Self { quantiles })
    }

    /// The longest length drawn.
    pub(crate) fn max(&self) -> usize {
        self.quantiles.last().copied().unwrap_or(0)
    }

    /// The length for one uniform draw `u` in [0, 1).
    #[inline]
    pub(crate) fn sample_at(&self, u: f64) -> usize {
        let q = &self.quantiles;
        if q.len() == 1 {
            return q[0];
        }
        let pos = u.clamp(0.0, 1.0) * (q.len() - 1) as f64;
        let i = (pos.floor() as usize).min(q.len() - 2);
        let frac = pos - i as f64;
        let (lo, hi) = (q[i], q[i + 1]);
        // Rounded to nearest, so both quantiles at the ends of a segment are drawn.
        (lo + ((hi - lo) as f64 * frac).round() as usize).min(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_quantiles() {
        let t = LengthTable::new(vec![10, 20, 20, 2000, 2400]).unwrap();
        assert_eq!(t.max(), 2400);
        let draws: Vec<usize> = (0..10_000).map(|k| t.sample_at(k as f64 / 10_000.0)).collect();
        assert!(draws.iter().all(|l| (10..=2400).contains(l)));
        // A quarter of the ranks between each pair of quantiles.
        let short = draws.iter().filter(|l| **l <= 20).count();
        let long = draws.iter().filter(|l| **l >= 2000).count();
        assert!((4900..=5100).contains(&short), "{short} of 10000 at most 20");
        assert!((2400..=2600).contains(&long), "{long} of 10000 at least 2000");
        assert_eq!(t.sample_at(0.0), 10);
        assert_eq!(t.sample_at(0.999_999), 2400);
        let one = LengthTable::new(vec![7]).unwrap();
        assert_eq!(one.sample_at(0.5), 7);
    }

    #[test]
    fn bad_quantiles_are_refused_with_reasons() {
        for (q, needle) in [
            (vec![], "at least one"),
            (vec![5, 3], "must not decrease"),
            (vec![-1, 3], "negative"),
            (vec![1, 17 << 20], "16 MiB"),
            (vec![1; 102], "at most 101"),
        ] {
            let err = LengthTable::new(q).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
