//! The StacyVM core: the [`Manager`] that owns every sandbox's life.
//!
//! It validates requests against limits, drives the lifecycle state machine
//! ([`lifecycle::transition`]), persists through the `stacyvm-store` traits, creates runtimes
//! through `stacyvm-provider`, publishes [`events`], and runs the reconcilers (TTL reaper,
//! orphan reconciliation at start, provider health). It knows no HTTP and no SQL.

pub mod error;
pub mod events;
pub mod lifecycle;
pub mod manager;
pub mod metrics;
pub mod settings;
pub mod utf8;
pub mod validate;

pub use error::{CoreError, CoreResult};
pub use manager::Manager;
pub use settings::Settings;
