//! `stacyvm serve`: load config, open the store, reconcile, then serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use stacyvm_config::{Config, DbDriver, LogFormat};
use stacyvm_core::Manager;
use stacyvm_store::sqlite::SqliteStore;
use tracing_subscriber::EnvFilter;

use crate::wiring;

/// Flags of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (default: ./stacyvm.yaml, then ~/.stacyvm/config.yaml).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_env("STACYVM_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{},hyper=warn", config.logging.level.as_str())));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.logging.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Raises the soft open-files limit to the hard one: every live sandbox holds a connection to
/// its agent, and the usual soft default (1024) would cap a host at a few hundred sandboxes.
fn raise_open_files_limit() {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            let raised = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                tracing::warn!(soft = rl.rlim_cur, "could not raise the open-files limit");
            }
        }
    }
}

/// Runs the server.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let loaded = stacyvm_config::load(args.config.as_deref())?;
    let config = loaded.config;
    init_logging(&config);
    raise_open_files_limit();
    match &loaded.source {
        Some(path) => tracing::info!(file = %path.display(), "configuration loaded"),
        None => tracing::info!("no config file found; using built-in defaults and STACYVM_* variables"),
    }
    if config.database.driver != DbDriver::Sqlite {
        bail!("database.driver {} is not supported yet; use sqlite", config.database.driver.as_str());
    }
    let images = wiring::image_store(&config);
    let registry = wiring::registry(&config, &images)?;
    if registry.get("mock").is_some() {
        tracing::warn!(
            "the mock provider gives NO isolation: its commands run directly on this host as user {}",
            std::env::var("USER").unwrap_or_else(|_| "of this process".into())
        );
    }
    let store = SqliteStore::open(&config.database.path)
        .with_context(|| format!("open database {}", config.database.path.display()))?;
    let manager = Manager::new(Arc::new(store), registry, wiring::settings(&config));
    let report = manager.reconcile().await.context("reconcile store and providers")?;
    tracing::info!(
        loaded = report.loaded,
        marked_error = report.marked_error.len(),
        finished_destroys = report.finished_destroys.len(),
        orphans_destroyed = report.orphans_destroyed.len(),
        "reconciled"
    );
    manager.refresh_health().await;
    manager.reap_once().await;
    manager.start_background();

    let mut http = wiring::http(&config);
    http.images = images.ok();
    if !http.auth.is_configured() {
        if http.auth.allow_unauthenticated {
            tracing::warn!(
                "auth.allow_unauthenticated is on and no API key is set: ANYONE who can reach this port controls it"
            );
        } else {
            tracing::warn!("no API key configured: only clients on localhost are served (set auth.api_key)");
        }
    }
    let router = stacyvm_server::router(Arc::clone(&manager), &http);
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("bind {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, provider = manager.providers().default_name(), "StacyVM listening");
    eprintln!(
        "StacyVM {} listening on http://{} (default provider: {})",
        stacyvm_server::VERSION,
        listener.local_addr()?,
        manager.providers().default_name()
    );
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    tracing::info!("shut down");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
