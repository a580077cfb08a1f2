//! Durations written as strings with a unit ("250ms", "5s", "1m 30s").

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct DurationValue(pub Duration);

impl DurationValue {
    pub(crate) fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl FromStr for DurationValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(s.trim())
            .map_err(|e| format!("`{s}` is not a duration like \"500ms\", \"5s\" or \"1m\" ({e})"))?;
        if d > super::limits::MAX_DURATION {
            return Err(format!(
                "`{s}` is too long: durations are at most {} (docs/limits.md)",
                humantime::format_duration(super::limits::MAX_DURATION)
            ));
        }
        Ok(DurationValue(d))
    }
}

impl fmt::Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for DurationValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, like \"500ms\" or \"5s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationValue, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_bare_numbers() {
        assert_eq!("250ms".parse::<DurationValue>().unwrap().0, Duration::from_millis(250));
        assert_eq!("1m 30s".parse::<DurationValue>().unwrap().0, Duration::from_secs(90));
        assert!("5".parse::<DurationValue>().is_err());
        assert!("fast".parse::<DurationValue>().is_err());
    }
}
