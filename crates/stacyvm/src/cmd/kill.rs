//! `stacyvm kill <id>`.

use stacyvm_client::Client;

/// Flags of `kill`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sandbox ID.
    id: String,
}

/// Destroys the sandbox.
pub async fn run(client: &Client, args: &Args, json: bool) -> anyhow::Result<()> {
    client.destroy(&args.id).await?;
    if json {
        println!("{}", serde_json::json!({"id": args.id, "status": "destroyed"}));
    } else {
        println!("Sandbox {} destroyed", args.id);
    }
    Ok(())
}
