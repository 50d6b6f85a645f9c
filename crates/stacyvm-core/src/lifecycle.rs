//! The sandbox lifecycle state machine: the only place that decides which state changes are
//! legal.
//!
//! ```text
//! pending → starting → running ⇄ paused
//!    │         │          │ ↘ unhealthy ⇄ running
//!    │         │          ↓        ↓
//!    └────→ error ←── expired ─→ stopping → destroyed
//! ```
//! Every live state can go to `stopping` (destroy) and `error`; `running`, `paused` and
//! `unhealthy` can expire. `destroyed` is final. Destroying an already destroyed sandbox is
//! handled above this layer (idempotent no-op), not as a transition.

use stacyvm_types::lifecycle::LifecycleState::{self, *};

/// A refused state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal sandbox state transition {from} -> {to}")]
pub struct IllegalTransition {
    /// Current state.
    pub from: LifecycleState,
    /// Requested state.
    pub to: LifecycleState,
}

/// Whether `from → to` is allowed.
pub fn is_legal(from: LifecycleState, to: LifecycleState) -> bool {
    match (from, to) {
        (Destroyed, _) => false,
        (Pending, Starting) => true,
        (Starting, Running) => true,
        (Running, Paused) | (Paused, Running) => true,
        (Running, Unhealthy) | (Unhealthy, Running) => true,
        (Running | Paused | Unhealthy, Expired) => true,
        (Stopping, Destroyed) => true,
        (Stopping, Error) => true,
        (Stopping, _) => false,
        (_, Stopping) => true,
        (_, Error) => from != Error,
        _ => false,
    }
}

/// Checks a transition.
pub fn transition(from: LifecycleState, to: LifecycleState) -> Result<LifecycleState, IllegalTransition> {
    if is_legal(from, to) {
        Ok(to)
    } else {
        Err(IllegalTransition { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every legal edge; everything else must be refused.
    const LEGAL: &[(LifecycleState, LifecycleState)] = &[
        (Pending, Starting),
        (Pending, Stopping),
        (Pending, Error),
        (Starting, Running),
        (Starting, Stopping),
        (Starting, Error),
        (Running, Paused),
        (Running, Unhealthy),
        (Running, Expired),
        (Running, Stopping),
        (Running, Error),
        (Paused, Running),
        (Paused, Expired),
        (Paused, Stopping),
        (Paused, Error),
        (Unhealthy, Running),
        (Unhealthy, Expired),
        (Unhealthy, Stopping),
        (Unhealthy, Error),
        (Expired, Stopping),
        (Expired, Error),
        (Error, Stopping),
        (Stopping, Destroyed),
        (Stopping, Error),
    ];

    #[test]
    fn every_pair_matches_the_table() {
        for from in LifecycleState::ALL {
            for to in LifecycleState::ALL {
                let expected = LEGAL.contains(&(from, to));
                assert_eq!(is_legal(from, to), expected, "{from} -> {to}");
                assert_eq!(transition(from, to).is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn destroyed_is_final_and_error_message_names_states() {
        let err = transition(Destroyed, Running).unwrap_err();
        assert_eq!(err.to_string(), "illegal sandbox state transition destroyed -> running");
    }
}
