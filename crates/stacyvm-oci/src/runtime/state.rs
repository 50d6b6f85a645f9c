//! The output of `state`: [`State`] and [`Status`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Container status as reported by `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, init waiting for `start`.
    Created,
    /// Init running.
    Running,
    /// Init exited.
    Stopped,
    /// Frozen.
    Paused,
    /// Anything else the runtime reported.
    Unknown(String),
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "creating" => Status::Creating,
            "created" => Status::Created,
            "running" => Status::Running,
            "stopped" => Status::Stopped,
            "paused" => Status::Paused,
            _ => Status::Unknown(s),
        })
    }
}

/// The output of `state` (the fields every runtime reports).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct State {
    /// Container id.
    pub id: String,
    /// Status.
    pub status: Status,
    /// Host pid of init; `None` once stopped (runtimes report 0).
    #[serde(default, deserialize_with = "pid_opt")]
    pub pid: Option<i32>,
    /// Bundle directory.
    #[serde(default)]
    pub bundle: Option<PathBuf>,
}

fn pid_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let v = Option::<i64>::deserialize(d)?;
    Ok(v.filter(|p| *p > 0).map(|p| p as i32))
}
