//! Wire types of the StacyVM REST API.
//!
//! Everything here is plain data: request and response shapes (with OpenAPI schemas), the closed
//! set of error codes, sandbox IDs and Go-style durations. No I/O happens in this crate.

pub mod duration;
pub mod error;
pub mod event;
pub mod exec;
pub mod files;
pub mod id;
pub mod image;
pub mod lifecycle;
pub mod provider;
pub mod quota;
pub mod sandbox;
pub mod system;
pub mod template;
pub mod time;

pub use duration::GoDuration;
pub use error::{ErrorBody, ErrorCode};
pub use id::SandboxId;
