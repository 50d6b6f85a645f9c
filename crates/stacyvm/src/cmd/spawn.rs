//! `stacyvm spawn`.

use stacyvm_client::Client;
use stacyvm_types::sandbox::SpawnRequest;

use crate::output::print_json;

/// Flags of `spawn`; zero or empty values are left to the server's defaults.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference.
    #[arg(long, default_value = "alpine:latest")]
    image: String,
    /// Provider (default: the server's).
    #[arg(long)]
    provider: Option<String>,
    /// Time to live, e.g. 30m, 2h.
    #[arg(long)]
    ttl: Option<String>,
    /// Memory in MiB.
    #[arg(long, default_value_t = 0)]
    memory: i64,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 0)]
    vcpus: i64,
    /// Template supplying defaults.
    #[arg(long)]
    template: Option<String>,
}

/// Spawns and prints the sandbox.
pub async fn run(client: &Client, args: &Args, json: bool) -> anyhow::Result<()> {
    let req = SpawnRequest {
        image: Some(args.image.clone()),
        provider: args.provider.clone().filter(|p| !p.is_empty()),
        ttl: args.ttl.clone().filter(|t| !t.is_empty()),
        memory_mb: (args.memory != 0).then_some(args.memory),
        vcpus: (args.vcpus != 0).then_some(args.vcpus),
        template: args.template.clone().filter(|t| !t.is_empty()),
        ..SpawnRequest::default()
    };
    let sandbox = client.spawn(&req).await?;
    if json {
        return print_json(&sandbox);
    }
    println!("Sandbox {} spawned (provider: {}, image: {})", sandbox.id, sandbox.provider, sandbox.image);
    Ok(())
}
