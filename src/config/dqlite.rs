//! The `[dqlite]` settings (`target = "dqlite"`): the faults injected while a run is
//! measured (`--fault`), and how long a client looks for a leader.

use super::duration::DurationValue;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a fault does to the throwaway cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// SIGKILL the leader.
    KillLeader,
    /// SIGKILL a follower.
    KillFollower,
    /// SIGSTOP the leader, SIGCONT it after the given time.
    PauseLeader(Duration),
    /// SIGKILL a follower and start it again at once on its own data.
    RestartNode,
}

/// One fault at a time into the measured phase: `kill-leader@5s`, `pause-leader@5s+2s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub at: Duration,
}

/// The fault kinds as written, for messages.
pub(crate) const FAULT_FORMS: &str =
    "kill-leader@T, kill-follower@T, pause-leader@T+D, restart-node@T (T, D durations like 5s)";

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("fault `{raw}`: {why}; use {FAULT_FORMS}");
        let (name, when) = raw.trim().split_once('@').ok_or_else(|| bad("no @T"))?;
        let duration = |s: &str| s.parse::<DurationValue>().map(|d| d.0).map_err(|e| bad(&e));
        let (at, kind) = match name.trim() {
            "pause-leader" => {
                let (at, pause) = when.split_once('+').ok_or_else(|| bad("pause-leader needs @T+D"))?;
                let pause = duration(pause)?;
                if pause.is_zero() {
                    return Err(bad("the pause must be longer than 0"));
                }
                (duration(at)?, FaultKind::PauseLeader(pause))
            }
            "kill-leader" => (duration(when)?, FaultKind::KillLeader),
            "kill-follower" => (duration(when)?, FaultKind::KillFollower),
            "restart-node" => (duration(when)?, FaultKind::RestartNode),
            other => return Err(bad(&format!("unknown fault `{other}`"))),
        };
        Ok(Fault { kind, at })
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = DurationValue(self.at);
        match self.kind {
            FaultKind::KillLeader => write!(f, "kill-leader@{at}"),
            FaultKind::KillFollower => write!(f, "kill-follower@{at}"),
            FaultKind::PauseLeader(d) => write!(f, "pause-leader@{at}+{}", DurationValue(d)),
            FaultKind::RestartNode => write!(f, "restart-node@{at}"),
        }
    }
}

impl Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn default_leader_timeout() -> DurationValue {
    DurationValue(Duration::from_secs(10))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DqliteSettings {
    /// Faults injected into the throwaway cluster while measuring, in time order.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// How long a client looks for a leader (at start, and after losing one) before the
    /// request fails.
    #[serde(default = "default_leader_timeout")]
    pub leader_timeout: DurationValue,
}

impl Default for DqliteSettings {
    fn default() -> Self {
        Self {
            faults: Vec::new(),
            leader_timeout: default_leader_timeout(),
        }
    }
}

impl DqliteSettings {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The `[dqlite]` keys overrides and matrix axes may set (as `dqlite.KEY`).
pub(crate) const SETTING_NAMES: &[&str] = &["faults", "leader_timeout"];

/// Sets one `[dqlite]` key; the error is a plain message (the caller says where). A single
/// string sets `faults` to that one fault.
pub(crate) fn set(settings: &mut DqliteSettings, key: &str, value: &toml::Value) -> Result<(), String> {
    if !SETTING_NAMES.contains(&key) {
        return Err(format!(
            "unknown setting `dqlite.{key}`; use one of dqlite.{}",
            SETTING_NAMES.join(", dqlite.")
        ));
    }
    let value = match (key, value) {
        ("faults", toml::Value::String(s)) => toml::Value::Array(
            s.split(';')
                .filter(|f| !f.trim().is_empty())
                .map(|f| toml::Value::String(f.trim().into()))
                .collect(),
        ),
        _ => value.clone(),
    };
    let mut table = toml::Table::try_from(&*settings).map_err(|e| e.to_string())?;
    table.insert(key.to_string(), value);
    *settings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("dqlite.{key}: {}", e.message().trim_end()))?;
    settings.faults.sort_by_key(|f| f.at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_print_and_bad_ones_are_named() {
        let f: Fault = "pause-leader@5s+1500ms".parse().unwrap();
        assert_eq!(f.kind, FaultKind::PauseLeader(Duration::from_millis(1500)));
        assert_eq!(f.at, Duration::from_secs(5));
        assert_eq!(f.to_string(), "pause-leader@5s+1s 500ms");
        assert_eq!("kill-leader@2s".parse::<Fault>().unwrap().kind, FaultKind::KillLeader);
        for bad in [
            "kill-leader",
            "kill-leader@soon",
            "explode@1s",
            "pause-leader@1s",
            "pause-leader@1s+0s",
        ] {
            let err = bad.parse::<Fault>().unwrap_err();
            assert!(err.contains(bad) && err.contains("kill-leader@T"), "{err}");
        }
        let mut s = DqliteSettings::default();
        set(
            &mut s,
            "faults",
            &toml::Value::String("kill-follower@3s;kill-leader@1s".into()),
        )
        .unwrap();
        assert_eq!(s.faults[0].kind, FaultKind::KillLeader);
        assert!(
            set(&mut s, "fsync", &toml::Value::Boolean(true))
                .unwrap_err()
                .contains("dqlite.fsync")
        );
        let err = set(&mut s, "leader_timeout", &toml::Value::String("never".into())).unwrap_err();
        assert!(err.contains("dqlite.leader_timeout"), "{err}");
    }
}
