//! Mouth-to-ear latency, booth page to attendee page, each in its own headless Chromium: the
//! booth's fake microphone plays a click a second; the taps of tests/common/ears.rs note each
//! click where it enters the booth's audio graph and where it leaves the attendee's, on the
//! same machine's clock. Prints the quantiles (BENCHMARKS.md quotes a long run:
//! `BABELCAST_LATENCY_CLICKS=200 cargo test --release --test browser_audio_latency -- --nocapture`);
//! asserts only that the clicks arrive, each one once.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/ears.rs"]
mod ears;
#[path = "common/sound.rs"]
mod sound;

use std::time::Duration;

use browser::*;
use common::*;
use ears::*;

/// Clicks measured by default (one a second).
const CLICKS: usize = 20;
/// Clicks a second apart: a latency is told from the click spacing up to this.
const SPACING_MS: f64 = 1000.0;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mouth_to_ear_latency_of_a_click_track() {
    let clicks: usize = std::env::var("BABELCAST_LATENCY_CLICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLICKS);
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("click.wav");
    sound::click_wav(&wav, 20.0, ANA_HZ, SPACING_MS as u64, 0);
    let s = TestServer::start().await;
    let base = s.http("");
    let booth = &Browser::start_with(&mic_args(&wav)).await;
    let ear = &Browser::start_with(&mic_args(&wav)).await;
    booth_with_mic(booth, &base, "en", "Ana", "on_air").await;
    attendee_listening(ear, &base, "en").await;
    // Settle: the jitter buffer finds its size on the first seconds of sound.
    let settled = now_ms(ear).await + 3000.0;
    let within = Duration::from_secs(clicks as u64 * 3 + 60);
    let heard = wait_clicks(ear, "ear", clicks, settled, |_| true, within).await;
    let mouths = clicks_of(booth).await;
    let heard: Vec<Click> = heard.into_iter().filter(|c| c.t > settled).collect();
    let mut lat: Vec<f64> = heard
        .iter()
        .filter_map(|e| mouths.iter().rev().find(|m| m.t < e.t).map(|m| e.t - m.t))
        .collect();
    assert_eq!(lat.len(), heard.len(), "every click heard was said first");
    lat.sort_by(f64::total_cmp);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "mouth-to-ear latency over {} clicks: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms, min {:.1} ms; player {}; load average {}",
        lat.len(),
        quantile(&lat, 0.5),
        quantile(&lat, 0.9),
        quantile(&lat, 0.99),
        lat[lat.len() - 1],
        lat[0],
        player_stats(ear).await,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    // Each click heard once: no two ear clicks closer than half the spacing.
    assert!(
        heard.windows(2).all(|w| w[1].t - w[0].t > SPACING_MS / 2.0),
        "a click heard twice: {heard:?}"
    );
    assert!(lat[0] > 0.0 && lat[lat.len() - 1] < SPACING_MS, "{lat:?}");
}

/// The booth's mouth clicks.
async fn clicks_of(b: &Browser) -> Vec<Click> {
    clicks(b, "mouth").await
}
