//! Busy-handler strategies: what a connection does when another holds the lock it needs.
//!
//! - `sqlite`: SQLite's own schedule, as `busy_timeout` installs it (sleeps 1, 2, 5, 10, 15,
//!   20, 25, 25, 25, 50, 50 ms, then 100 ms per try). Worker connections run litehammer's
//!   copy of it, which gives up at once on Ctrl-C (SQLite's own sleeps on to the timeout);
//!   the plain loop does not report its calls, as with SQLite's own handler.
//! - `fixed(<interval>)`: sleeps a constant interval and retries until `busy_timeout` has
//!   passed (the approach of the Ruby sqlite3 driver and Rails).
//! - `none`: no handler; SQLITE_BUSY at once.
//!
//! The handlers themselves run in `targets::sqlite::busy`.

use crate::config::duration::DurationValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum BusyHandler {
    #[default]
    Sqlite,
    Fixed(Duration),
    None,
}

impl FromStr for BusyHandler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "sqlite" => return Ok(BusyHandler::Sqlite),
            "none" => return Ok(BusyHandler::None),
            "fixed" | "fixed()" => return Err("`fixed` needs an interval, e.g. \"fixed(1ms)\"".into()),
            _ => {}
        }
        let inner = s
            .strip_prefix("fixed(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("unknown busy_handler `{s}`; use \"sqlite\", \"fixed(1ms)\" or \"none\""))?;
        let interval: DurationValue = inner.parse()?;
        if interval.0.is_zero() {
            return Err(format!("busy_handler `{s}`: the interval must be greater than zero"));
        }
        super::limits::wait(interval.0).map_err(|e| format!("busy_handler `{s}`: {e}"))?;
        Ok(BusyHandler::Fixed(interval.0))
    }
}

impl fmt::Display for BusyHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusyHandler::Sqlite => f.write_str("sqlite"),
            BusyHandler::Fixed(d) => write!(f, "fixed({})", humantime::format_duration(*d)),
            BusyHandler::None => f.write_str("none"),
        }
    }
}

impl Serialize for BusyHandler {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BusyHandler {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_handlers() {
        assert_eq!("sqlite".parse::<BusyHandler>().unwrap(), BusyHandler::Sqlite);
        assert_eq!("none".parse::<BusyHandler>().unwrap(), BusyHandler::None);
        let fixed: BusyHandler = "fixed(1ms)".parse().unwrap();
        assert_eq!(fixed, BusyHandler::Fixed(Duration::from_millis(1)));
        assert_eq!(fixed.to_string(), "fixed(1ms)");
        for (bad, why) in [
            ("fixed", "needs an interval"),
            ("fixed(0ms)", "greater than zero"),
            ("fixed(-1ms)", "duration"),
            ("polite", "unknown busy_handler"),
        ] {
            let err = bad.parse::<BusyHandler>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
