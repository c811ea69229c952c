//! The `babelcast` command: parse the CLI, load config, init tracing, bind, serve.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use babelcast::server::lan::Origin;
use babelcast::{Config, Options, Server};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "babelcast",
    version,
    about = "Live interpretation and caption relay server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay server.
    Serve {
        /// Config file [default: config/babelcast.toml if it exists, else the built-in demo
        /// event].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides server.bind).
        #[arg(long)]
        bind: Option<String>,
        /// Transcript directory (overrides storage.dir).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Replay a built-in sample speech into the demo event.
        #[arg(long)]
        demo: bool,
        /// Serve web/ files from this directory instead of the embedded copies.
        #[arg(long)]
        web_dir: Option<PathBuf>,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
    },
    /// Load-test a running server: listeners, publishers, latency, loss, server memory and CPU.
    Load(Box<babelcast::load::LoadConfig>),
    /// Check a config file and exit non-zero naming every problem.
    CheckConfig {
        /// Config file [default: config/babelcast.toml if it exists, else the built-in one].
        file: Option<PathBuf>,
    },
    /// Publish stdin to a channel: partials as text arrives, a final at each line break;
    /// unacked lines are resent after a reconnect, so none is lost or doubled.
    Push(PushArgs),
    /// Relay Ogg Opus from stdin (e.g. `ffmpeg … -c:a libopus -f ogg -`) to a channel's sound
    /// feed, in real time, reconnecting by itself.
    PushAudio(PushAudioArgs),
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "babelcast=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Push(args) => push(args),
        Command::PushAudio(args) => push_audio(args),
        Command::Load(cfg) => babelcast::load::main(*cfg),
        Command::CheckConfig { file } => match load_config(file) {
            Ok((c, source)) => {
                let channels: usize = c.events.iter().map(|e| e.channels.len()).sum();
                println!(
                    "{source}: ok ({} events, {channels} channels)",
                    c.events.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", chain(&e));
                ExitCode::FAILURE
            }
        },
        Command::Serve {
            config,
            bind,
            data,
            demo,
            web_dir,
            log_json,
        } => {
            init_tracing(log_json);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(serve(config, bind, data, demo, web_dir)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {}", chain(&e));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// An error and its causes, each said once (a cause whose words the message already holds
/// is not repeated).
fn chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// Where the config came from, for the banner and `check-config`.
enum Source {
    File(PathBuf),
    BuiltIn,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::BuiltIn => write!(
                f,
                "no config file ({} not found): the built-in default",
                babelcast::config::DEFAULT_PATH
            ),
        }
    }
}

/// The named config file; else `config/babelcast.toml` if there is one; else the built-in
/// default (the demo event), so `babelcast serve` runs anywhere.
fn load_config(path: Option<PathBuf>) -> anyhow::Result<(Config, Source)> {
    let path = match path {
        Some(p) => p,
        None => {
            let p = PathBuf::from(babelcast::config::DEFAULT_PATH);
            if !p.exists() {
                return Ok((Config::built_in(), Source::BuiltIn));
            }
            p
        }
    };
    Ok((Config::load(&path)?, Source::File(path)))
}

async fn serve(
    config_path: Option<PathBuf>,
    bind: Option<String>,
    data: Option<PathBuf>,
    demo: bool,
    web_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (mut config, source) = load_config(config_path)?;
    if let Some(b) = bind {
        config.server.bind = b;
    }
    if let Some(d) = data {
        config.storage.dir = d;
    }
    // Thousands of sockets: use the whole open-file allowance (limits.max_connections = 0
    // sizes itself from it).
    babelcast::limiter::raise_nofile_limit();
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.bind))?;
    let store = config.storage.dir.clone();
    let server = Server::start(listener, config, Options { web_dir }).await?;
    print_banner(&server, &source, &store);
    if demo {
        tokio::spawn(babelcast::demo::run(
            server.hub().clone(),
            server.ingest().clone(),
            server.shutdown_token(),
        ));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Prints where things are, once: the config and store, the dashboard, each event's
/// attendee and booth pages and publish URLs, and secrets only if they were made at start
/// (like Jupyter prints its token). Configured secrets are never printed (under systemd or
/// in a container stdout is the log), and no token is ever logged.
fn print_banner(server: &Server, source: &Source, store: &std::path::Path) {
    let hub = server.hub();
    let url = server.public_url();
    println!("babelcast listening on {url}");
    let bound = server.local_addr();
    match server.public_url_origin() {
        Origin::Lan => println!(
            "  (bound to {bound}, every interface: links and QR codes use this machine's network \
             address; set server.public_url if phones reach it by another name)"
        ),
        Origin::NoLan => println!(
            "  warning: bound to {bound} but this machine has no network address: phones \
             cannot open these links; set server.public_url"
        ),
        Origin::Bound if bound.ip().is_loopback() => println!(
            "  (only this machine can open these links: bind 0.0.0.0 or set server.public_url \
             for phones)"
        ),
        Origin::Bound | Origin::Configured => {}
    }
    println!("  config: {source}");
    if matches!(source, Source::BuiltIn) {
        println!("    (write your own and pass --config FILE; see README.md)");
    }
    let store = std::path::absolute(store).unwrap_or_else(|_| store.to_path_buf());
    println!(
        "  store: {}",
        store.join(babelcast::store::DB_FILE).display()
    );
    println!("  dashboard: {url}/admin");
    let ws = url.replacen("http", "ws", 1);
    for ev in hub.events().iter() {
        println!("\n  {} — attendees: {url}/e/{}", ev.id, ev.id);
        println!("    booth: {url}/booth/{}", ev.id);
        for ch in &ev.channels {
            let publish = format!("{ws}/v1/events/{}/channels/{ch}/publish", ev.id);
            match hub.auth.generated_publish_token(&ev.id, ch) {
                Some(token) => println!("    publish {ch:<8} {publish}?token={token}"),
                None if hub.auth.has_file_tokens(&ev.id, ch) => {
                    println!("    publish {ch:<8} {publish} (token from the config file)")
                }
                None => println!("    publish {ch:<8} {publish} (credentials from the dashboard)"),
            }
        }
    }
    match hub.auth.generated_admin_token() {
        Some(token) => println!("\n  admin token (made at start, valid until it stops): {token}\n"),
        None => {
            println!("\n  admin token: set in the config or BABELCAST_ADMIN_TOKEN (not printed)\n")
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `babelcast push` arguments.
#[derive(clap::Args)]
struct PushArgs {
    /// The channel's publish URL: ws://HOST/v1/events/EVENT/channels/CHANNEL/publish
    #[arg(long)]
    url: String,
    /// The channel's publish token (default: $BABELCAST_TOKEN).
    #[arg(long)]
    token: Option<String>,
    /// Prefix of the client ids (`PREFIX-1`, `PREFIX-2`, …); must be new for every run.
    /// Default: random.
    #[arg(long)]
    id_prefix: Option<String>,
    /// The publisher name booth partners see (default: the id prefix).
    #[arg(long)]
    name: Option<String>,
    /// Shortest time between two partials, in milliseconds.
    #[arg(long, default_value_t = 150)]
    partial_ms: u64,
    /// Longest line in characters (a longer one is committed at a space).
    #[arg(long, default_value_t = 4000)]
    max_chars: usize,
}

fn push(args: PushArgs) -> ExitCode {
    init_tracing(false);
    let Some(token) = args.token.or_else(|| std::env::var("BABELCAST_TOKEN").ok()) else {
        eprintln!("error: a publish token is needed (--token or BABELCAST_TOKEN)");
        return ExitCode::FAILURE;
    };
    let mut opts = babelcast::push::PushOptions::new(args.url, token);
    if let Some(p) = args.id_prefix {
        opts.id_prefix = p;
    }
    opts.name = args.name;
    opts.partial_interval = std::time::Duration::from_millis(args.partial_ms);
    opts.max_chars = args.max_chars;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            on_signal.cancel();
        });
        babelcast::push::run(opts, tokio::io::stdin(), cancel).await
    });
    match result {
        Ok(r) => {
            eprintln!(
                "pushed {} lines ({} acked, {} already stored, {} connections)",
                r.lines, r.acked, r.duplicates, r.connections
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `babelcast push-audio` arguments.
#[derive(clap::Args)]
struct PushAudioArgs {
    /// The channel's sound feed URL: ws://HOST/v1/events/EVENT/channels/CHANNEL/audio/publish
    /// (its publish URL is accepted too).
    #[arg(long)]
    url: String,
    /// The channel's publish token (default: $BABELCAST_TOKEN).
    #[arg(long)]
    token: Option<String>,
}

fn push_audio(args: PushAudioArgs) -> ExitCode {
    init_tracing(false);
    let Some(token) = args.token.or_else(|| std::env::var("BABELCAST_TOKEN").ok()) else {
        eprintln!("error: a publish token is needed (--token or BABELCAST_TOKEN)");
        return ExitCode::FAILURE;
    };
    let opts = babelcast::push::PushOptions::new(args.url, token);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            on_signal.cancel();
        });
        babelcast::push::audio::run(opts, tokio::io::stdin(), cancel).await
    });
    match result {
        Ok(r) => {
            eprintln!(
                "relayed {} of {} Opus packets ({} dropped while the server was away, {} connections)",
                r.sent, r.packets, r.dropped, r.connections
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
