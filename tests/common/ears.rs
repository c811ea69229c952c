//! Listening to pages in the browser tests: Chromium's fake microphone plays a click track (a
//! WAV the test writes), and a script run before the page's own (`EARS`) taps the Web Audio
//! graph where sound enters it (a microphone source: "mouth", timed when the audio thread has
//! the sample) and leaves it (whatever is connected to the speakers: "ear", timed when the
//! sample leaves the output, its latency counted), noting each click's onset on the wall clock
//! and its pitch. A booth's clicks are known by their pitch (Ana 1 kHz, Ben 2.5 kHz), and mouth-to-ear
//! latency is an ear click's time less the mouth click's before it.
//!
//! Include with `#[path = "common/ears.rs"] mod ears;` next to `browser` and `sound`.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::browser::Browser;

/// The pitch of Ana's clicks and of Ben's.
pub const ANA_HZ: f64 = 1000.0;
pub const BEN_HZ: f64 = 2500.0;
/// Clicks above this pitch are Ben's.
const SPLIT_HZ: f64 = 1750.0;

/// Chromium switches for a fake microphone playing `wav` in a loop, granted without asking,
/// and sound allowed without a gesture (the tests still click).
pub fn mic_args(wav: &Path) -> Vec<String> {
    vec![
        "--use-fake-ui-for-media-stream".into(),
        "--use-fake-device-for-media-stream".into(),
        format!("--use-file-for-fake-audio-capture={}", wav.display()),
        "--autoplay-policy=no-user-gesture-required".into(),
    ]
}

/// The tap, installed before the page's scripts: `window.__ears` collects `{kind, t, hz}`.
/// It listens on the audio thread (an AudioWorklet, loaded from a `blob:` URL: the window's
/// content security policy is bypassed for it, see [`install_ears`]), so a busy page misses
/// no click.
pub const EARS: &str = r#"(() => {
  if (window.__ears) return;
  const clicks = (window.__ears = []);
  const code = `registerProcessor("ears", class extends AudioWorkletProcessor {
    constructor(o) { super(); this.quiet = 1e9; this.p = null; }
    process(inputs) {
      const x = inputs[0] && inputs[0][0];
      if (!x) return true;
      for (let i = 0; i < x.length; i++) {
        const a = Math.abs(x[i]);
        if (this.p) {
          this.p.n++;
          if ((x[i] >= 0) !== this.p.s) { this.p.zc++; this.p.s = x[i] >= 0; }
          if (this.p.n >= 0.012 * sampleRate) {
            this.port.postMessage({ t: this.p.t, hz: this.p.zc / 2 / 0.012 });
            this.p = null;
          }
        } else if (a > 0.03 && this.quiet > 0.15 * sampleRate) {
          this.p = { t: currentTime + i / sampleRate, n: 0, zc: 0, s: x[i] >= 0 };
        }
        this.quiet = a > 0.03 ? 0 : this.quiet + 1;
      }
      return true;
    }
  });`;
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  const modules = new WeakMap();
  const connect = AudioNode.prototype.connect;
  const tapped = new WeakSet();
  function tap(node, kind) {
    if (tapped.has(node)) return;
    tapped.add(node);
    const ctx = node.context;
    if (!modules.has(ctx)) modules.set(ctx, ctx.audioWorklet.addModule(url));
    modules.get(ctx).then(() => {
      const ear = new AudioWorkletNode(ctx, "ears", { numberOfOutputs: 0 });
      // A silent source keeps the tap's input active while nothing plays (between voices,
      // a server restart): without one, Chromium stops feeding it for good.
      const keep = ctx.createConstantSource();
      keep.offset.value = 0;
      connect.call(keep, ear);
      keep.start();
      // Held, or the browser may collect nodes that have no output.
      (window.__earNodes = window.__earNodes || []).push(ear, keep);
      ear.port.onmessage = (e) => {
        // Mouth: when the audio thread had the sample (the context's present); ear: when the
        // sample leaves the speakers (the output timestamp, which counts the output latency).
        const o = ctx.getOutputTimestamp();
        const now = performance.timeOrigin + performance.now();
        const t = kind === "mouth"
          ? now - (ctx.currentTime - e.data.t) * 1000
          : performance.timeOrigin + o.performanceTime + (e.data.t - o.contextTime) * 1000;
        clicks.push({ kind, t, hz: e.data.hz });
      };
      connect.call(node, ear);
    });
  }
  AudioNode.prototype.connect = function (dest, ...rest) {
    if (dest instanceof AudioDestinationNode) tap(this, "ear");
    if (this instanceof MediaStreamAudioSourceNode) tap(this, "mouth");
    return connect.call(this, dest, ...rest);
  };
})();"#;

/// Installs [`EARS`] in every page the current window loads from now on, with the page's
/// content security policy bypassed for the tap's worklet.
pub async fn install_ears(b: &Browser) {
    b.cdp("Page.setBypassCSP", json!({ "enabled": true })).await;
    b.init_script(EARS).await;
}

/// One click heard by a tap.
#[derive(Debug, Clone, Copy)]
pub struct Click {
    /// Wall-clock time of its onset, Unix ms.
    pub t: f64,
    pub hz: f64,
}

impl Click {
    /// Whether it is Ben's (else Ana's).
    pub fn ben(&self) -> bool {
        self.hz > SPLIT_HZ
    }
}

/// The clicks the current window's tap of `kind` ("mouth" or "ear") noted so far.
pub async fn clicks(b: &Browser, kind: &str) -> Vec<Click> {
    let v = b
        .js(
            "return (window.__ears || []).filter(c => c.kind === arguments[0])",
            vec![json!(kind)],
        )
        .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|c| Click {
                    t: c["t"].as_f64().unwrap_or(0.0),
                    hz: c["hz"].as_f64().unwrap_or(0.0),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a page says about its connection and sound, for a failing test's message.
const DIAGNOSIS: &str = "const q = (s) => document.querySelector(s);
  const c = q('#pane-main .listen') && q('#pane-main .listen').listen;
  return JSON.stringify({
    conn: q('#conn') && q('#conn').dataset.state,
    listen: q('#pane-main') && q('#pane-main').dataset.sound,
    sound: q('#sound') && q('#sound').dataset.state,
    player: c && c.player ? {
      state: c.player.state, ctx: c.player.ctx && c.player.ctx.state, stats: c.player.stats,
      minTransit: c.player.transit.value,
      lastAge: c.player.lastPacket && performance.timeOrigin + performance.now() - c.player.lastPacket.ts,
      clockSkew: c.player.ctx && c.player.clockAt(performance.timeOrigin + performance.now()) - c.player.ctx.currentTime,
      outputTs: c.player.ctx && c.player.ctx.getOutputTimestamp(), perfNow: performance.now(), current: c.player.ctx && c.player.ctx.currentTime,
    } : null,
    taps: (window.__earNodes || []).length,
  })";

/// Waits until the current window's tap of `kind` noted `n` clicks matching `which` after
/// wall-clock time `after` (Unix ms); returns them all.
pub async fn wait_clicks(
    b: &Browser,
    kind: &str,
    n: usize,
    after: f64,
    which: impl Fn(&Click) -> bool,
    within: Duration,
) -> Vec<Click> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let all = clicks(b, kind).await;
        if all.iter().filter(|c| c.t > after && which(c)).count() >= n {
            return all;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "{n} {kind} clicks after {after} not heard within {within:?}; heard {all:?}; page: {}",
                b.js(DIAGNOSIS, vec![]).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The browser's wall clock, Unix ms.
pub async fn now_ms(b: &Browser) -> f64 {
    b.js("return performance.timeOrigin + performance.now()", vec![])
        .await
        .as_f64()
        .unwrap()
}

/// Signs in to the booth of `channel` as `name` and turns the microphone on; waits for the
/// sound row to say `state` (on_air, standby, feed).
pub async fn booth_with_mic(b: &Browser, base: &str, channel: &str, name: &str, state: &str) {
    install_ears(b).await;
    b.booth_sign_in(base, channel, name).await;
    b.click("#mic").await;
    b.wait_eq(
        "the microphone is on",
        "return document.getElementById('sound').dataset.state",
        json!(state),
        Duration::from_secs(20),
    )
    .await;
}

/// Opens the attendee page of `channel` and taps Listen.
pub async fn attendee_listening(b: &Browser, base: &str, channel: &str) {
    install_ears(b).await;
    b.goto(&format!("{base}/e/conf?channel={channel}")).await;
    b.wait_live("#conn").await;
    b.click("#pane-main .listen").await;
    b.wait_true(
        "listening",
        "return document.querySelector('#pane-main .listen').getAttribute('aria-pressed') === 'true'",
    )
    .await;
}

/// The attendee page's player statistics (main pane).
pub async fn player_stats(b: &Browser) -> Value {
    b.js(
        "const c = document.querySelector('#pane-main .listen').listen; return c && c.player ? c.player.stats : null",
        vec![],
    )
    .await
}
