//! `stacyvm logs <id>`.

use stacyvm_client::Client;

use crate::output::print_json;

/// Flags of `logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sandbox ID.
    id: String,
    /// How many lines.
    #[arg(long, default_value_t = 100)]
    lines: u32,
}

/// Prints the console lines.
pub async fn run(client: &Client, args: &Args, json: bool) -> anyhow::Result<()> {
    let lines = client.logs(&args.id, args.lines).await?;
    if json {
        return print_json(&lines);
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
