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
        /// Config file.
        #[arg(long, default_value = "config/babelcast.toml")]
        config: PathBuf,
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
    Load(babelcast::load::LoadConfig),
    /// Check a config file and exit non-zero naming every problem.
    CheckConfig {
        /// Config file.
        #[arg(default_value = "config/babelcast.toml")]
        file: PathBuf,
    },
    /// Publish stdin to a channel: partials as text arrives, a final at each line break;
    /// unacked lines are resent after a reconnect, so none is lost or doubled.
    Push(PushArgs),
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
        Command::Load(cfg) => babelcast::load::main(cfg),
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(c) => {
                let channels: usize = c.events.iter().map(|e| e.channels.len()).sum();
                println!(
                    "{}: ok ({} events, {channels} channels)",
                    file.display(),
                    c.events.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
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
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(
    config_path: PathBuf,
    bind: Option<String>,
    data: Option<PathBuf>,
    demo: bool,
    web_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = Config::load(&config_path)?;
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
    let server = Server::start(listener, config, Options { web_dir }).await?;
    print_banner(&server);
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

/// Prints the publisher and admin links once, like Jupyter prints its token. Tokens are never
/// logged.
fn print_banner(server: &Server) {
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
    for ev in &hub.events {
        println!("\n  {} — attendees: {url}/e/{}", ev.id, ev.id);
        for ch in &ev.channels {
            if let Some(token) = hub.publish_token(&ev.id, ch) {
                let ws = url.replacen("http", "ws", 1);
                println!(
                    "    publish {ch:<8} {ws}/v1/events/{}/channels/{ch}/publish?token={token}",
                    ev.id
                );
            }
        }
    }
    println!("\n  admin token: {}\n", hub.admin_token());
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
