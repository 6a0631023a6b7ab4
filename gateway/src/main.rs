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
    /// Plugin authoring: create and check adapter components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Check the store's index against its blob tree. Prints a JSON report
    /// whose `verdict` is `clean`, `leftovers` (spools, orphan blob files,
    /// unreferenced blobs: harmless, a running gateway deletes them) or
    /// `damage`. Exits 0 when there is no damage (or it was repaired), 1
    /// on damage without `--repair` or when the check cannot run.
    Fsck {
        /// Repair: drop broken entries, delete orphans and temp files.
        #[arg(long)]
        repair: bool,
        /// Re-hash every blob (slow).
        #[arg(long)]
        verify: bool,
        /// Check the cluster's bucket (`[shared]`) instead: every record
        /// against the blobs. Safe while the cluster serves; `--repair`
        /// writes lost blobs back from this node's blob files and drops
        /// cached records whose blob is nowhere (exit 1 when damage is
        /// left).
        #[arg(long)]
        shared: bool,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Load a component as the gateway would, call `describe` and run
    /// golden cases; exits 1 when anything fails.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Directory of golden cases (`*.toml`, `*.json`).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Cache compiled code in this directory (as the gateway does).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Compile components with Cranelift into the gateway's compiled-code
    /// cache (`[plugins] cache_dir` of the configuration), so that the
    /// gateway runs them optimised from the moment they are dropped into
    /// the plugin directory, with no compile in the reload.
    Compile {
        /// The components (`.wasm`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write a new adapter project: sources, README, golden cases.
    New {
        /// Adapter name (also its package type).
        name: String,
        /// Language of the project.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// Project directory (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Depend on this artgate-sdk crate by path (`plugins/sdk` of an
        /// artgate checkout) instead of a copy in the project.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Rewrite the SDK copy (`artgate-sdk/`) of a Rust adapter project
    /// with this binary's SDK and WIT.
    Sdk {
        /// The project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Lang {
    Rust,
    Python,
}

/// Runs the command; an error is the user's to fix (a bad configuration, a
/// port in use), so it prints as one message with its causes and exits 1,
/// never with a backtrace, whatever `RUST_BACKTRACE` says. Backtraces are
/// for panics.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` is the message and its causes on one line; `{:?}`
            // would add the backtrace anyhow captured.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _log_writer = init_tracing(cli.log_format);
    // Test builds only: failpoints of the commit protocol from $FAILPOINTS
    // (gateway/src/store/failpoint.rs), active for the whole process.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    if let Some(Command::Plugin(PluginCommand::New {
        name,
        lang,
        dir,
        sdk,
    })) = cli.command
    {
        return plugin_new(name, lang, dir, sdk);
    }
    if let Some(Command::Plugin(PluginCommand::Sdk { dir })) = &cli.command {
        let written =
            artgate::plugins::scaffold::refresh_sdk(dir).map_err(|e| anyhow::anyhow!(e))?;
        println!(
            "wrote the artgate SDK {} into {}:",
            env!("CARGO_PKG_VERSION"),
            dir.join(artgate::plugins::scaffold::SDK_DIR).display()
        );
        for f in written {
            println!("  {f}");
        }
        return Ok(());
    }
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
            for w in config.warnings() {
                println!("warning: {w}");
            }
            println!(
                "configuration OK: {} remote(s), listening on {}",
                config.remotes.len(),
                config.server.listen
            );
            Ok(())
        }
        Command::Fsck {
            shared: true,
            verify: true,
            ..
        } => {
            anyhow::bail!(
                "fsck --shared does not take --verify: it checks records against the bucket's blobs by size (run fsck --verify on each node for its own files)"
            )
        }
        Command::Fsck {
            repair,
            shared: true,
            ..
        } => fsck_shared(&config, repair),
        Command::Fsck { repair, verify, .. } => fsck(&config, repair, verify),
        Command::Plugin(PluginCommand::Check {
            file,
            cases,
            cache_dir,
        }) => plugin_check(&config, file, cases, cache_dir),
        Command::Plugin(PluginCommand::Compile { files }) => plugin_compile(&config, &files),
        Command::Plugin(PluginCommand::New { .. } | PluginCommand::Sdk { .. }) => {
            unreachable!("handled above")
        }
        Command::Serve => serve(config),
    }
}

/// Log to stderr through a background writer thread: request threads only
/// format their line; the thread writes whatever has queued up in one
/// `write(2)` and flushes whenever the queue is empty, so lines appear at
/// once when the gateway is quiet. Nothing is dropped under load (the
/// queue blocks when full). The returned guard flushes on drop.
fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARTGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("artgate-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
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
    // Kept for the operator console; a failure to keep it fails nothing.
    if let Err(e) = fsck::save_last(&config.storage.dir, &report) {
        eprintln!("could not save the report for the console: {e}");
    }
    // Leftovers are reported, not failed: they are harmless.
    if report.damaged() && !repair {
        std::process::exit(1);
    }
    Ok(())
}

fn fsck_shared(config: &artgate::config::Config, repair: bool) -> anyhow::Result<()> {
    use artgate::store::{BlobStore, FsBlobStore, SharedTier};
    let Some(cfg) = &config.shared else {
        anyhow::bail!("fsck --shared needs a [shared] section in the configuration");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = rt.block_on(async {
        let https = artgate::upstream::https_connector(&config.upstream)?;
        let tier = SharedTier::new(cfg, https).map_err(|e| anyhow::anyhow!("[shared]: {e}"))?;
        // This node's blob files, when it has any: where lost blobs come
        // back from.
        let local = if config.storage.dir.is_dir() {
            FsBlobStore::open(&config.storage.dir).ok()
        } else {
            None
        };
        tier.check(repair, local.as_ref().map(|b| b as &dyn BlobStore))
            .await
            .map_err(|e| anyhow::anyhow!("fsck --shared: {e}"))
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report.damaged() {
        std::process::exit(1);
    }
    Ok(())
}

fn plugin_check(
    config: &artgate::config::Config,
    wasm: PathBuf,
    cases: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let args = artgate::plugins::check::CheckArgs {
        wasm,
        cases,
        cache_dir,
    };
    let ok = rt.block_on(artgate::plugins::check::run(
        &config.plugins,
        &args,
        &mut std::io::stdout(),
    ))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

fn plugin_compile(config: &artgate::config::Config, files: &[PathBuf]) -> anyhow::Result<()> {
    let cache_dir = config.plugin_cache_dir();
    let engine = artgate::plugins::PluginEngine::new(&config.plugins, Some(cache_dir.clone()))?;
    for file in files {
        let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let started = std::time::Instant::now();
        let done = engine
            .precompile(&wasm)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        println!(
            "{}: {} {} ({:.2?})",
            file.display(),
            if done.fresh {
                "compiled into"
            } else {
                "already in"
            },
            done.path.display(),
            started.elapsed()
        );
    }
    println!(
        "a gateway uses this code when it runs with the same configuration ([plugins] settings and cache_dir)"
    );
    Ok(())
}

fn plugin_new(
    name: String,
    lang: Lang,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> anyhow::Result<()> {
    use artgate::plugins::scaffold;
    let created = scaffold::create(&scaffold::NewArgs {
        name,
        lang: match lang {
            Lang::Rust => scaffold::Lang::Rust,
            Lang::Python => scaffold::Lang::Python,
        },
        dir,
        sdk,
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    println!("created {}:", created.dir.display());
    for f in &created.files {
        println!("  {f}");
    }
    if let Some(note) = &created.sdk_note {
        println!("artgate-sdk dependency: {note}");
    }
    println!("next:");
    for s in &created.next_steps {
        println!("  {s}");
    }
    Ok(())
}
