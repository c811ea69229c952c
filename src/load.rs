//! The load generator behind `babelcast load`: many listeners and a few publishers against a
//! running server, measuring end-to-end latency, completeness, connect time and, given the
//! server's pid, its memory per idle connection and CPU per delivery.
//!
//! Every caption carries its publisher's clock in a token (`[lg:<pub>:<n>:<unix_micros>]`), so
//! each listener times every delivery; every listener checks that it saw each seq after the
//! one it joined at exactly once and in order, across reconnects (`since=`) caused by a server
//! restart, a `4001` close or a client-side reconnect storm (`--drop-at`).

mod args;
mod audio;
mod captions;
mod client;
mod handoff;
mod judge;
mod listener;
mod phases;
mod progress;
mod publisher;
mod report;
mod state;
pub mod stats;
mod tls;

use std::net::SocketAddr;

pub use args::LoadConfig;
pub use captions::caption;
pub use listener::ListenerOutcome;
use progress::Progress;
pub use publisher::PublisherOutcome;
pub use report::{table, Report, ServerUse};
use state::RunState;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad --url {0:?}: expected ws://host:port or http://host:port")]
    Url(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    #[error("{0} is not a loopback address; pass --allow-remote to load a remote server")]
    NotLoopback(SocketAddr),
    #[error("probing channel {0}: {1}")]
    Probe(String, client::ConnectError),
    #[error("--ca-file: {0}")]
    Tls(String),
}

/// Current wall-clock time in Unix microseconds.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs a load test and reports what it measured.
pub async fn run(cfg: LoadConfig) -> Result<Report, LoadError> {
    let shared = RunState::prepare(cfg).await?;
    let progress = Progress::start(shared.clone());
    let mut server = ServerUse {
        rss_before_bytes: stats::rss_sum(&shared.cfg.server_pid).unwrap_or(0),
        ..Default::default()
    };
    let connected = phases::connect(&shared, &progress, &mut server).await;
    let meter = phases::Meter::start(&shared);
    let published = phases::publish(&shared, &progress).await;
    let drained = phases::drain(&shared, &progress).await;
    let loadgen_cpu_ms = meter.finish(&shared, &mut server);

    // 4. Stop and judge.
    shared.stop.cancel();
    let mut outcomes = Vec::with_capacity(shared.cfg.listeners);
    for l in connected.listeners {
        outcomes.push(l.await.unwrap_or_default());
    }
    progress.finish();
    Ok(judge::report(
        &shared,
        judge::Measured {
            outcomes,
            connect_phase_secs: connected.secs,
            published,
            drained,
            server,
            loadgen_cpu_ms,
        },
    ))
}

/// `babelcast load`: runs on its own runtime, prints the report, fails on any loss.
pub fn main(cfg: LoadConfig) -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let json = cfg.json;
    match rt.block_on(run(cfg)) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                print!("{}", table(&report));
            }
            if report.ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
