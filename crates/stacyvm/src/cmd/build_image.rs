//! `stacyvm build-image REF`: prepares an image in the local store ahead of time, without a
//! running server (provisioning, air-gapped installs, golden hosts): pulls it from its registry,
//! or imports it from an archive with `--from`, using the configuration `serve` would use.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cmd::image::{human_bytes, ProgressBar};
use crate::output::print_json;
use crate::wiring;

/// Flags of `build-image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// OCI reference of the image to prepare.
    reference: String,
    /// Import this archive (`docker save`, OCI layout tar or rootfs tar) instead of pulling.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Configuration file (default: the file `serve` would read).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
}

/// Prepares the image.
pub async fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let config = stacyvm_config::load(args.config.as_deref())?.config;
    let store = wiring::image_store(&config)?;
    let image = match &args.from {
        Some(file) => store.import(file, Some(&args.reference)).await?.remove(0),
        None => {
            let bar = std::sync::Mutex::new(ProgressBar::new(!json && std::io::stderr().is_terminal()));
            let progress = |e: stacyvm_image::PullEvent| {
                let value = serde_json::to_value(e).unwrap_or_default();
                bar.lock().unwrap_or_else(|p| p.into_inner()).show(&value);
            };
            let image = store.pull(&args.reference, &progress).await?;
            bar.lock().unwrap_or_else(|p| p.into_inner()).finish();
            image
        }
    };
    if json {
        return print_json(&image);
    }
    println!(
        "Prepared {} ({}, {} layers, {}) in {}",
        image.reference,
        image.digest,
        image.layers.len(),
        human_bytes(image.size()),
        store.root().display()
    );
    Ok(())
}
