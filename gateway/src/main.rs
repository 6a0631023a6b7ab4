//! The `artgate` command line: parse arguments, load the configuration,
//! set up logging, bind, run.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// A caching artifact gateway whose package formats are WebAssembly
/// components.
#[derive(Parser)]
#[command(name = "artgate", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, the built-in default runs.
    #[arg(long, short, global = true, env = "ARTGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Override `server.listen`.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Validate the configuration and exit.
    Check,
    /// Check the store's index against its blob tree.
    Fsck {
        /// Repair: drop broken entries, delete orphans and temp files.
        #[arg(long)]
        repair: bool,
        /// Re-hash every blob (slow).
        #[arg(long)]
        verify: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let mut config = match &cli.config {
        Some(p) => artgate::config::load(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => artgate::config::Config::default_config()
            .context("the built-in default configuration")?,
    };
    if let Some(l) = cli.listen {
        config.server.listen = l;
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => {
            println!(
                "configuration OK: {} remote(s), listening on {}",
                config.remotes.len(),
                config.server.listen
            );
            Ok(())
        }
        Command::Fsck { repair, verify } => fsck(&config, repair, verify),
        Command::Serve => serve(config),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARTGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(config: artgate::config::Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            let _ = tx.send(true);
        });
        artgate::run(listener, config, rx).await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn fsck(config: &artgate::config::Config, repair: bool, verify: bool) -> anyhow::Result<()> {
    use artgate::store::{FsBlobStore, SledMetaStore, fsck};
    let blobs = FsBlobStore::open(&config.storage.dir)
        .with_context(|| format!("opening {}", config.storage.dir.display()))?;
    let meta = SledMetaStore::open(&config.storage.dir.join("index"))
        .map_err(|e| anyhow::anyhow!("opening the index: {e}"))?;
    let report =
        fsck::check(&meta, &blobs, repair, verify).map_err(|e| anyhow::anyhow!("fsck: {e}"))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.is_clean() && !repair {
        std::process::exit(1);
    }
    Ok(())
}
