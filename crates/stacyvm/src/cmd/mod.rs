//! One module per subcommand.

pub mod build_image;
pub mod exec;
pub mod image;
pub mod kill;
pub mod list;
pub mod logs;
pub mod serve;
pub mod spawn;
pub mod version;

use anyhow::Context;

/// A REST client for `--server` with a long timeout, for pulls and uploads of big images.
pub fn long_client(server: &str, api_key: Option<String>) -> anyhow::Result<stacyvm_client::Client> {
    stacyvm_client::Client::with_timeout(server, api_key, std::time::Duration::from_secs(6 * 3600))
        .with_context(|| format!("invalid --server {server}"))
}

/// A REST client for `--server`.
pub fn client(server: &str, api_key: Option<String>) -> anyhow::Result<stacyvm_client::Client> {
    stacyvm_client::Client::new(server, api_key).with_context(|| format!("invalid --server {server}"))
}
