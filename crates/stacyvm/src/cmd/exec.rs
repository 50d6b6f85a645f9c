//! `stacyvm exec <id> [--shell] -- <cmd> [args...]`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;
use stacyvm_client::Client;
use stacyvm_types::exec::ExecRequest;

use crate::output::print_json;

/// Flags of `exec`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sandbox ID.
    id: String,
    /// Join the words into one shell line instead of running them as argv.
    #[arg(long)]
    shell: bool,
    /// Timeout, e.g. 30s.
    #[arg(long)]
    timeout: Option<String>,
    /// Working directory inside the sandbox.
    #[arg(long)]
    workdir: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn parse_env(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else { bail!("--env expects KEY=VALUE, got {pair:?}") };
        env.insert(k.to_string(), v.to_string());
    }
    Ok(env)
}

/// Builds the request: argv mode by default, one shell line with `--shell`.
pub fn request(args: &Args) -> anyhow::Result<ExecRequest> {
    let (command, rest) = args.command.split_first().expect("clap requires a command");
    let base = ExecRequest {
        env: parse_env(&args.env)?,
        workdir: args.workdir.clone().unwrap_or_default(),
        timeout: args.timeout.clone().unwrap_or_default(),
        ..ExecRequest::default()
    };
    Ok(if args.shell {
        ExecRequest { command: args.command.join(" "), mode: "shell".into(), ..base }
    } else {
        ExecRequest { command: command.clone(), args: rest.to_vec(), mode: "argv".into(), ..base }
    })
}

/// Runs the command; returns the remote exit code.
pub async fn run(client: &Client, args: &Args, json: bool) -> anyhow::Result<i32> {
    let result = client.exec(&args.id, &request(args)?).await?;
    if json {
        print_json(&result)?;
    } else {
        std::io::stdout().write_all(result.stdout.as_bytes())?;
        std::io::stderr().write_all(result.stderr.as_bytes())?;
    }
    if result.exit_code != 0 && !json {
        eprintln!("exit code: {}", result.exit_code);
    }
    Ok(result.exit_code)
}
