//! `stacyvm image pull|import|list|rm|prune`: the server's image store, over the REST API.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::bail;
use futures::StreamExt;
use stacyvm_client::Client;
use stacyvm_types::image::ImageInfo;

use crate::output::{print_json, table};

/// Subcommands of `image`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pull an image from its registry into the server's store (with a progress bar).
    Pull {
        /// OCI reference, e.g. `alpine:3.19` or `registry.lan:5000/team/tools:1`.
        reference: String,
    },
    /// Import a `docker save` archive, an OCI layout tar or a rootfs tar (optionally gzipped).
    Import {
        /// The archive.
        file: PathBuf,
        /// Name for the image (required for a rootfs tar; archives carry their own names).
        #[arg(long = "ref", value_name = "REFERENCE")]
        reference: Option<String>,
    },
    /// List the images in the store.
    #[command(alias = "ls")]
    List,
    /// Remove an image (refused while a sandbox uses it) and the layers nothing else uses.
    #[command(alias = "remove")]
    Rm {
        /// OCI reference.
        reference: String,
    },
    /// Delete layers that no image and no sandbox uses.
    Prune,
}

/// Runs an `image` subcommand.
pub async fn run(client: &Client, command: &Command, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Pull { reference } => pull(client, reference, json).await,
        Command::Import { file, reference } => {
            let images = client.import_image(file, reference.as_deref()).await?;
            if json {
                return print_json(&images);
            }
            for image in images {
                println!("Imported {} ({})", image.reference, human_bytes(image.size_bytes));
            }
            Ok(())
        }
        Command::List => {
            let images = client.images().await?;
            if json {
                return print_json(&images);
            }
            print_table(&images);
            Ok(())
        }
        Command::Rm { reference } => {
            let removed = client.remove_image(reference).await?;
            if json {
                return print_json(&removed);
            }
            println!(
                "Removed {reference} ({} layers deleted, {} freed)",
                removed.layers_removed,
                human_bytes(removed.bytes_freed)
            );
            Ok(())
        }
        Command::Prune => {
            let report = client.prune_images().await?;
            if json {
                return print_json(&report);
            }
            println!("{} layers deleted, {} freed", report.layers_removed, human_bytes(report.bytes_freed));
            Ok(())
        }
    }
}

async fn pull(client: &Client, reference: &str, json: bool) -> anyhow::Result<()> {
    let mut lines = std::pin::pin!(client.pull_image_stream(reference).await?);
    let mut bar = ProgressBar::new(!json && std::io::stderr().is_terminal());
    while let Some(line) = lines.next().await {
        let line = line?;
        match line["status"].as_str() {
            Some("done") => {
                bar.finish();
                if json {
                    return print_json(&line["image"]);
                }
                let image: ImageInfo = serde_json::from_value(line["image"].clone())?;
                println!("Pulled {} ({}, {})", image.reference, image.digest, human_bytes(image.size_bytes));
                return Ok(());
            }
            Some("error") => {
                bar.finish();
                bail!(
                    "{}: {}",
                    line["code"].as_str().unwrap_or("ERROR"),
                    line["message"].as_str().unwrap_or("pull failed")
                );
            }
            _ => bar.show(&line),
        }
    }
    bail!("the server closed the pull stream before it finished")
}

fn print_table(images: &[ImageInfo]) {
    if images.is_empty() {
        println!("No images");
        return;
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i.reference.clone(),
                i.digest.chars().take(19).collect(),
                human_bytes(i.size_bytes),
                i.layers.len().to_string(),
                i.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["REFERENCE", "DIGEST", "SIZE", "LAYERS", "CREATED"], &rows));
}

/// `1.5 MB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Renders pull progress events (the JSON form of `stacyvm_image::PullEvent`) on stderr: one
/// rewritten line on a terminal, one line per finished layer otherwise.
pub struct ProgressBar {
    live: bool,
    total: u64,
    layers: usize,
    done: usize,
}

impl ProgressBar {
    /// A renderer; `live` = rewrite one line (a terminal).
    pub fn new(live: bool) -> Self {
        ProgressBar { live, total: 0, layers: 0, done: 0 }
    }

    /// Shows one event.
    pub fn show(&mut self, event: &serde_json::Value) {
        let digest = event["digest"].as_str().unwrap_or_default();
        let short = digest.get(7..19).unwrap_or(digest);
        match event["status"].as_str() {
            Some("resolved") => {
                self.total = event["bytes"].as_u64().unwrap_or(0);
                self.layers = event["layers"].as_u64().unwrap_or(0) as usize;
                eprintln!(
                    "Pulling {} ({} layers, {})",
                    event["reference"].as_str().unwrap_or_default(),
                    self.layers,
                    human_bytes(self.total)
                );
            }
            Some("downloading") if self.live => {
                let (got, of) = (event["downloaded"].as_u64().unwrap_or(0), event["total"].as_u64().unwrap_or(0));
                let percent = (got * 100).checked_div(of).unwrap_or(0);
                let filled = (percent / 5) as usize;
                eprint!(
                    "\r{short} [{}{}] {percent:>3}% {}/{}   ",
                    "#".repeat(filled),
                    " ".repeat(20 - filled.min(20)),
                    human_bytes(got),
                    human_bytes(of)
                );
                let _ = std::io::stderr().flush();
            }
            Some("layer_done") | Some("layer_cached") => {
                self.done += 1;
                let how = if event["status"] == "layer_cached" { "already present" } else { "done" };
                if self.live {
                    eprint!("\r\x1b[K");
                }
                eprintln!("{short}: {how} ({}/{})", self.done, self.layers);
            }
            _ => {}
        }
    }

    /// Ends a live line.
    pub fn finish(&mut self) {
        if self.live {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
