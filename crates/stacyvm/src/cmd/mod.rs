//! One module per subcommand.

pub mod exec;
pub mod kill;
pub mod list;
pub mod logs;
pub mod serve;
pub mod spawn;
pub mod version;

use anyhow::Context;

/// A REST client for `--server`.
pub fn client(server: &str, api_key: Option<String>) -> anyhow::Result<stacyvm_client::Client> {
    stacyvm_client::Client::new(server, api_key).with_context(|| format!("invalid --server {server}"))
}
