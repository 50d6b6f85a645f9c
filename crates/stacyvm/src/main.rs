//! `stacyvm`: the server (`stacyvm serve`) and the command-line client.

mod cmd;
mod output;
mod wiring;

use clap::{Parser, Subcommand};

/// Self-hosted sandbox orchestrator for AI agents.
#[derive(Debug, Parser)]
#[command(name = "stacyvm", version, about, long_about = None)]
struct Cli {
    /// Server URL for client commands.
    #[arg(long, global = true, env = "STACYVM_SERVER", default_value = "http://localhost:7423")]
    server: String,
    /// API key sent as X-API-Key.
    #[arg(long, global = true, env = "STACYVM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (configuration from stacyvm.yaml and STACYVM_* variables).
    Serve(cmd::serve::Args),
    /// Spawn a sandbox.
    Spawn(cmd::spawn::Args),
    /// Run a command in a sandbox (argv mode; --shell for a shell line).
    Exec(cmd::exec::Args),
    /// List live sandboxes.
    #[command(alias = "ls")]
    List,
    /// Destroy a sandbox.
    Kill(cmd::kill::Args),
    /// Show a sandbox's console log.
    Logs(cmd::logs::Args),
    /// Manage the server's image store (pull, import, list, rm, prune).
    #[command(subcommand)]
    Image(cmd::image::Command),
    /// Prepare an image in the local store ahead of time, without a server (pull or --from FILE).
    BuildImage(cmd::build_image::Args),
    /// Print the version.
    Version,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = || cmd::client(&cli.server, cli.api_key.clone());
        match &cli.command {
            Command::Serve(args) => cmd::serve::run(args).await.map(|()| 0),
            Command::Spawn(args) => cmd::spawn::run(&client()?, args, cli.json).await.map(|()| 0),
            Command::Exec(args) => cmd::exec::run(&client()?, args, cli.json).await,
            Command::List => cmd::list::run(&client()?, cli.json).await.map(|()| 0),
            Command::Kill(args) => cmd::kill::run(&client()?, args, cli.json).await.map(|()| 0),
            Command::Logs(args) => cmd::logs::run(&client()?, args, cli.json).await.map(|()| 0),
            Command::Image(command) => {
                let client = cmd::long_client(&cli.server, cli.api_key.clone())?;
                cmd::image::run(&client, command, cli.json).await.map(|()| 0)
            }
            Command::BuildImage(args) => cmd::build_image::run(args, cli.json).await.map(|()| 0),
            Command::Version => {
                cmd::version::run(cli.json);
                Ok(0)
            }
        }
    });
    match result {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(code) => std::process::ExitCode::from(code.clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
