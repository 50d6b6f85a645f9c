//! `stacyvm list`.

use stacyvm_client::Client;

use crate::output::{print_json, table};

/// Prints live sandboxes as a table (or JSON).
pub async fn run(client: &Client, json: bool) -> anyhow::Result<()> {
    let sandboxes = client.list().await?;
    if json {
        return print_json(&sandboxes);
    }
    if sandboxes.is_empty() {
        println!("No active sandboxes");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = sandboxes
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.state.as_str().to_string(),
                s.provider.clone(),
                s.image.clone(),
                s.created_at.format("%H:%M:%S").to_string(),
                s.expires_at.format("%H:%M:%S").to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["ID", "STATE", "PROVIDER", "IMAGE", "CREATED", "EXPIRES"], &rows));
    Ok(())
}
