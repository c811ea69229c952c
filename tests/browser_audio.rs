//! The interpreters' voices from booth page to attendee page, in real headless Chromium with
//! fake microphones playing click tracks (tests/common/ears.rs): Listen on a channel nobody
//! speaks on says so in words until a voice starts; a handover mid-stream switches the voice
//! in one step; a standby partner is never heard; a listener that stalls for 5 s resumes with
//! current sound, not the backlog; killing and restarting the server brings the sound back by
//! itself. The tests check order and content (whose voice, which packets), never how fast.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/ears.rs"]
mod ears;
#[path = "common/sound.rs"]
mod sound;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use browser::*;
use common::*;
use ears::*;
use serde_json::json;

/// How long sound may take to show up (a browser starting its microphone on a loaded machine).
const SOUND_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's `channel::audio::VOICE_IDLE`: a voice silent this long has ended. A handover
/// between two running microphones never leaves the air that quiet.
const VOICE_IDLE_MS: f64 = 1500.0;
/// The attendee page's words for a channel with no voice (web/i18n/en.js `listen.no_voice`).
const NO_VOICE: &str = "No voice on this channel right now; captions continue.";
/// What the attendee page says while the voice plays (`listen.playing`).
const PLAYING: &str = "Playing the voice";
/// The listen state's words and whether they are on screen.
const LISTEN_STATE: &str = "const e = document.querySelector('#pane-main .listen-state');
  return [e.textContent, e.checkVisibility()]";

/// Click tracks: Ana 1 kHz, Ben 2.5 kHz, a click every 500 ms (Ben's half-way between Ana's).
fn tracks(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (a, b) = (dir.join("ana.wav"), dir.join("ben.wav"));
    sound::click_wav(&a, 10.0, ANA_HZ, 500, 0);
    sound::click_wav(&b, 10.0, BEN_HZ, 500, 250);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_switches_the_voice_and_a_standby_partner_is_never_heard() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana_wav, ben_wav) = tracks(tmp.path());
    let s = TestServer::start().await;
    let base = s.http("");
    let a = &Browser::start_with(&mic_args(&ana_wav)).await;
    let b = &Browser::start_with(&mic_args(&ben_wav)).await;
    // Browser a: the attendee, then Ana's booth in a second window; browser b: Ben's booth.
    attendee_listening(a, &base, "en").await;
    let (attendee, ana) = a.second_window().await;
    booth_with_mic(a, &base, "en", "Ana", "on_air").await;
    booth_with_mic(b, &base, "en", "Ben", "standby").await;
    b.assert_accessible("the booth with the microphone on, on standby")
        .await;
    // Both microphones run; the attendee hears Ana only, for several clicks.
    a.switch(&attendee).await;
    let since = now_ms(a).await;
    wait_clicks(a, "ear", 6, since, |_| true, SOUND_TIMEOUT).await;
    assert_eq!(a.text("#pane-main .listen-state").await, PLAYING);
    a.assert_accessible("the attendee page playing the voice")
        .await;
    // Ben asks, Ana hands over.
    let before = now_ms(a).await;
    b.click("#request").await;
    a.switch(&ana).await;
    a.wait_true(
        "the handover request",
        "return !document.getElementById('accept').hidden",
    )
    .await;
    a.click("#accept").await;
    b.wait_eq(
        "Ben on air",
        "return document.getElementById('sound').dataset.state",
        json!("on_air"),
        PAGE_TIMEOUT,
    )
    .await;
    let switched = now_ms(b).await;
    a.switch(&attendee).await;
    let heard = wait_clicks(a, "ear", 6, switched, Click::ben, SOUND_TIMEOUT).await;
    // Ben was never heard before the handover was asked for; once his voice is heard, Ana's
    // never again (her clicks still in flight play before his: no overlap, no interleaving).
    let first_ben = heard
        .iter()
        .filter(|c| c.ben())
        .map(|c| c.t)
        .fold(f64::INFINITY, f64::min);
    assert!(
        first_ben > before,
        "standby partner heard at {first_ben}, before the handover was asked for at {before}: {heard:?}"
    );
    let ana_after: Vec<_> = heard
        .iter()
        .filter(|c| !c.ben() && c.t > first_ben)
        .collect();
    assert!(
        ana_after.is_empty(),
        "Ana heard after Ben's voice began at {first_ben}: {ana_after:?}"
    );
    assert!(heard.iter().filter(|c| !c.ben() && c.t < before).count() >= 6);
    // The voice changed in one step: the very next packet, from a channel that never fell
    // silent (a handover that waited for silence would show as a new voice after a gap).
    let stats = player_stats(a).await;
    let handovers = stats["handovers"].as_array().unwrap();
    assert_eq!(handovers.len(), 1, "{stats}");
    assert_eq!(
        handovers[0]["packets"], 1,
        "consecutive packets across the handover: {stats}"
    );
    assert!(
        handovers[0]["gapMs"].as_f64().unwrap() < VOICE_IDLE_MS,
        "the air went silent at the handover: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_stalls_resumes_with_current_sound_not_the_backlog() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana_wav, ben_wav) = tracks(tmp.path());
    let s = TestServer::start().await;
    let base = s.http("");
    let a = &Browser::start_with(&mic_args(&ana_wav)).await;
    let b = &Browser::start_with(&mic_args(&ben_wav)).await;
    let l = &Browser::start_with(&mic_args(&ana_wav)).await;
    booth_with_mic(a, &base, "en", "Ana", "on_air").await;
    booth_with_mic(b, &base, "en", "Ben", "standby").await;
    attendee_listening(l, &base, "en").await;
    let since = now_ms(l).await;
    wait_clicks(l, "ear", 4, since, |_| true, SOUND_TIMEOUT).await;
    // Ben asks to take over. Then the attendee's page freezes (its main thread busy: a
    // phone's tab in the background) while Ana's sound piles up; still frozen, it tells the
    // test, which has Ana hand over; then it stays frozen while Ben's sound piles up too.
    b.click("#request").await;
    a.wait_true(
        "the handover request",
        "return !document.getElementById('accept').hidden",
    )
    .await;
    let signal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let signal_url = format!("http://{}/frozen", signal.local_addr().unwrap());
    install_player_probe(l).await;
    // The call that starts the stall returns only once the page answers again: the test
    // hands over meanwhile.
    let stall = l.js(STALL, vec![json!(signal_url), json!(STALL_MS)]);
    let handover = async {
        let mut frozen = tokio::time::timeout(SOUND_TIMEOUT, signal.accept())
            .await
            .expect("the attendee's page froze and called")
            .unwrap()
            .0;
        read_request(&mut frozen).await;
        a.click("#accept").await;
        b.wait_eq(
            "Ben on air",
            "return document.getElementById('sound').dataset.state",
            json!("on_air"),
            PAGE_TIMEOUT,
        )
        .await;
        frozen
            .write_all(b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
    };
    tokio::join!(stall, handover);
    // This call waits for the page: it runs once the stall is over.
    let stall = l.js("return window.__stall", vec![]).await;
    let end = stall["end"].as_f64().expect("the stall ended");
    let handed = stall["handed"].as_f64().unwrap();
    // After the stall: Ben's voice only, none of Ana's that was queued meanwhile...
    let heard = wait_clicks(l, "ear", 3, end, Click::ben, SOUND_TIMEOUT).await;
    let after: Vec<_> = heard.iter().filter(|c| c.t > end).collect();
    assert!(
        after.iter().all(|c| c.ben()),
        "backlog played after the stall: {after:?}"
    );
    // ...and current: the first packet played after the stall was received by the server
    // just before the stall ended (within the jitter buffer), not seconds of Ben's backlog.
    let first = l
        .js(
            "return window.__played.find(p => p.at > arguments[0])",
            vec![json!(end)],
        )
        .await;
    let sent = first["ts"]
        .as_f64()
        .expect("a packet played after the stall");
    assert!(
        sent > end - RECENT_MS,
        "the first packet played after the stall was sent at {sent}, {} ms before the stall ended at {end} (a backlog of {} ms): {stall}",
        end - sent,
        end - handed
    );
    let stats = player_stats(l).await;
    assert!(
        stats["late"].as_u64().unwrap() > 100,
        "the stall's packets were skipped: {stats}"
    );
}

/// How long the attendee's page stays frozen before the handover, and again after it.
const STALL_MS: f64 = 2500.0;
/// The oldest a packet may be when it is the first played after a stall: the player's
/// largest jitter buffer (400 ms) and then some, far less than the [`STALL_MS`] of backlog.
const RECENT_MS: f64 = 1000.0;

/// Freezes the page's main thread (as a phone does to a background tab): busy for
/// `arguments[1]` ms, then a synchronous request to the test (`arguments[0]`), answered once
/// the handover is done, then busy as long again. Notes the times in `window.__stall`.
const STALL: &str = "const [url, ms] = arguments;
  const now = () => performance.timeOrigin + performance.now();
  const busy = () => { const t = now(); while (now() - t < ms) {} };
  setTimeout(() => {
    const stall = (window.__stall = { start: now() });
    busy();
    const x = new XMLHttpRequest();
    x.open('GET', url, false);
    x.send();
    stall.handed = now();
    busy();
    stall.end = now();
  }, 0)";

/// Notes, in `window.__played`, the server time of each packet the attendee's player plays
/// and when it was decoded (`{ts, at}`).
async fn install_player_probe(l: &Browser) {
    l.js(
        "const p = document.querySelector('#pane-main .listen').listen.player;
         window.__played = [];
         const frame = p.frame.bind(p);
         p.frame = (data) => {
           const ts = p.decoding[0], played = p.stats.played;
           frame(data);
           if (p.stats.played > played)
             window.__played.push({ ts, at: performance.timeOrigin + performance.now() });
         };",
        vec![],
    )
    .await;
}

/// Reads an HTTP request's head from `s`.
async fn read_request(s: &mut tokio::net::TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the page's request ended early");
        head.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_the_server_brings_the_sound_back_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana_wav, _) = tracks(tmp.path());
    let data = tempfile::tempdir().unwrap();
    let mut server = BinServer::start(data.path()).await;
    let addr = server.addr;
    let base = format!("http://{addr}");
    let a = &Browser::start_with(&mic_args(&ana_wav)).await;
    attendee_listening(a, &base, "en").await;
    let (attendee, _booth) = a.second_window().await;
    booth_with_mic(a, &base, "en", "Ana", "on_air").await;
    a.switch(&attendee).await;
    let since = now_ms(a).await;
    wait_clicks(a, "ear", 3, since, |_| true, SOUND_TIMEOUT).await;
    server.kill9().await;
    let killed = now_ms(a).await;
    server = BinServer::spawn(BinOptions {
        bind: addr.to_string(),
        ..BinOptions::new(data.path())
    })
    .await;
    // Nobody touches either page: both reconnect, Ana's console takes the air again, and the
    // attendee hears her.
    wait_clicks(a, "ear", 3, killed + 500.0, |_| true, SOUND_TIMEOUT).await;
    assert_eq!(a.text("#pane-main .listen-state").await, PLAYING);
    drop(server);
}

/// The floor from a booth console in floor mode (a mixer's output on the laptop's input):
/// ticked by itself on the floor channel, it sends to the channel's sound feed, heard while no
/// partner speaks, and its console says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_in_floor_mode_feeds_the_room_to_the_floor_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let (room, _) = tracks(tmp.path());
    let s = TestServer::start().await;
    let base = s.http("");
    let a = &Browser::start_with(&mic_args(&room)).await;
    attendee_listening(a, &base, "floor").await;
    let (attendee, _console) = a.second_window().await;
    install_ears(a).await;
    a.booth_sign_in(&base, "floor", "Sound desk").await;
    assert_eq!(
        a.js(
            "return document.getElementById('floor-feed').checked",
            vec![]
        )
        .await,
        json!(true),
        "floor mode is ticked by itself on a floor channel"
    );
    a.click("#mic").await;
    a.wait_eq(
        "the floor feed is on",
        "return document.getElementById('sound').dataset.state",
        json!("feed"),
        SOUND_TIMEOUT,
    )
    .await;
    a.switch(&attendee).await;
    let since = now_ms(a).await;
    wait_clicks(a, "ear", 3, since, |_| true, SOUND_TIMEOUT).await;
    assert_eq!(a.text("#pane-main .listen-state").await, PLAYING);
}

/// Issue 17 item 3: Listen on a channel with no voice says so, in words, while captions go
/// on: nobody on air, then a partner on air with no microphone. When the partner turns the
/// microphone on, the words go and the voice plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_says_when_the_channel_has_no_voice_until_one_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana_wav, _) = tracks(tmp.path());
    let s = TestServer::start().await;
    let base = s.http("");
    let a = &Browser::start_with(&mic_args(&ana_wav)).await;
    attendee_listening(a, &base, "en").await;
    a.wait_eq(
        "the no-voice words",
        LISTEN_STATE,
        json!([NO_VOICE, true]),
        PAGE_TIMEOUT,
    )
    .await;
    a.assert_accessible("the attendee page with no voice").await;
    // Ana signs in to the booth: on air, captions, no microphone yet.
    let (attendee, booth) = a.second_window().await;
    install_ears(a).await;
    a.booth_sign_in(&base, "en", "Ana").await;
    a.booth_commit("Welcome, everyone.").await;
    a.switch(&attendee).await;
    a.wait_eq(
        "the caption",
        "return [...document.querySelectorAll('#pane-main .log .line')].map(l => l.textContent)",
        json!(["Welcome, everyone."]),
        PAGE_TIMEOUT,
    )
    .await;
    assert_eq!(a.js(LISTEN_STATE, vec![]).await, json!([NO_VOICE, true]));
    assert!(clicks(a, "ear").await.is_empty(), "sound with no voice");
    // The microphone on: the voice plays, the words change.
    a.switch(&booth).await;
    let since = now_ms(a).await;
    a.click("#mic").await;
    a.wait_eq(
        "the microphone is on",
        "return document.getElementById('sound').dataset.state",
        json!("on_air"),
        SOUND_TIMEOUT,
    )
    .await;
    a.switch(&attendee).await;
    wait_clicks(a, "ear", 3, since, |_| true, SOUND_TIMEOUT).await;
    a.wait_eq(
        "the voice playing",
        LISTEN_STATE,
        json!([PLAYING, true]),
        PAGE_TIMEOUT,
    )
    .await;
    assert_eq!(
        a.js(
            "return document.querySelector('#pane-main').dataset.sound",
            vec![]
        )
        .await,
        json!("playing")
    );
}
