//! Internal lifecycle states of a sandbox and how each appears on the wire.
//!
//! The legal transitions between them live in `stacyvm-core` (`lifecycle::transition`); this
//! module only names the states so the store and the API can share them.

use std::fmt;
use std::str::FromStr;

use crate::sandbox::WireState;

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleState {
    /// Row written, runtime not yet requested.
    Pending,
    /// Runtime being created.
    Starting,
    /// Ready for commands.
    Running,
    /// Owner unreachable.
    Unhealthy,
    /// Paused by the provider.
    Paused,
    /// TTL passed, waiting for the reaper.
    Expired,
    /// Failed; kept for inspection until reaped.
    Error,
    /// Runtime being torn down.
    Stopping,
    /// Gone for good.
    Destroyed,
}

impl LifecycleState {
    /// Every state, for table tests.
    pub const ALL: [LifecycleState; 9] = [
        LifecycleState::Pending,
        LifecycleState::Starting,
        LifecycleState::Running,
        LifecycleState::Unhealthy,
        LifecycleState::Paused,
        LifecycleState::Expired,
        LifecycleState::Error,
        LifecycleState::Stopping,
        LifecycleState::Destroyed,
    ];

    /// Storage spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Pending => "pending",
            LifecycleState::Starting => "starting",
            LifecycleState::Running => "running",
            LifecycleState::Unhealthy => "unhealthy",
            LifecycleState::Paused => "paused",
            LifecycleState::Expired => "expired",
            LifecycleState::Error => "error",
            LifecycleState::Stopping => "stopping",
            LifecycleState::Destroyed => "destroyed",
        }
    }

    /// The state clients see (`pending`/`starting` → `creating`, `stopping` → `running`).
    pub const fn wire(self) -> WireState {
        match self {
            LifecycleState::Pending | LifecycleState::Starting => WireState::Creating,
            LifecycleState::Running | LifecycleState::Stopping => WireState::Running,
            LifecycleState::Unhealthy => WireState::Unhealthy,
            LifecycleState::Paused => WireState::Paused,
            LifecycleState::Expired => WireState::Expired,
            LifecycleState::Error => WireState::Error,
            LifecycleState::Destroyed => WireState::Destroyed,
        }
    }

    /// Whether the sandbox still holds (or may hold) a runtime.
    pub const fn is_live(self) -> bool {
        !matches!(self, LifecycleState::Destroyed)
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LifecycleState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LifecycleState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown lifecycle state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for state in LifecycleState::ALL {
            assert_eq!(state.as_str().parse::<LifecycleState>(), Ok(state));
        }
        assert!("bogus".parse::<LifecycleState>().is_err());
    }
}
