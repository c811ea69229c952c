//! Publishing from the booth in a real headless Chromium (tests/common/browser.rs): a standby
//! partner's line is held and never sent by itself, and an input method's composition never
//! leaks as partials.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::*;
use common::*;
use fantoccini::key::Key;
use serde_json::json;

/// Test instrumentation run before the booth's own scripts: while `__hold` is set, messages
/// the server sends to the booth's publisher socket wait (a slow network on the way back), so
/// the page can send a final while the server already has a partner on air.
const HOLD_PUBLISHER_MESSAGES: &str = r#"
(() => {
  const Native = WebSocket;
  window.__hold = false;
  window.__held = [];
  window.__release = () => {
    window.__hold = false;
    for (const f of window.__held.splice(0)) f();
  };
  window.WebSocket = class extends Native {
    set onmessage(fn) {
      this._fn = fn;
      super.onmessage = fn && ((e) => {
        if (window.__hold && this.url.includes("/publish")) window.__held.push(() => fn.call(this, e));
        else fn.call(this, e);
      });
    }
    get onmessage() { return this._fn; }
  };
})();
"#;

/// The booth's own lines as [seq or "", state or "note", text].
const OWN_LINES: &str = "return [...document.querySelectorAll('#lines > li')].map(l => [l.dataset.seq || '', l.classList.contains('note') ? 'note' : l.dataset.state, l.classList.contains('note') ? l.textContent : l.querySelector('.btext').textContent])";

/// The silence rule's time in these tests, in seconds (the shortest there is).
const TAKEOVER_AFTER: u64 = 1;

/// Everything a listener receives for `window` (no message at all is fine).
async fn received_for(l: &mut WsClient, window: std::time::Duration) -> Vec<serde_json::Value> {
    let mut got = Vec::new();
    let end = tokio::time::Instant::now() + window;
    while let Ok(v) = tokio::time::timeout_at(end, l.recv()).await {
        got.push(v);
    }
    got
}

/// Issue 14, item 1: a standby partner's line never goes on air later. A line committed on
/// standby is kept, marked not sent; one the server refused (the page did not know yet that a
/// partner took over) is kept the same way and never resent by itself — not by the 5 s resend,
/// not after the handover back. Each goes out only with "Send now", once on air. The handover
/// notes stay in seq order among the lines, and every alert is a sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_lines_are_held_and_sent_only_by_the_interpreter() {
    let s = TestServer::start_with(|c| c.booth.takeover_after_secs = TAKEOVER_AFTER).await;
    let b = &Browser::start().await;
    b.init_script(HOLD_PUBLISHER_MESSAGES).await;
    let mut listener = s.listen("en", None).await;
    b.booth_sign_in(&s.http(""), "en", "Ben").await;
    b.wait_eq(
        "Ben on air",
        "return document.getElementById('onair').dataset.state",
        json!("mine"),
        PAGE_TIMEOUT,
    )
    .await;
    // Ben came on air before his page said so, and says nothing from now on.
    let silent_since = tokio::time::Instant::now();
    let mut anna = s.publish_as("en", "Anna").await;
    // The way back to Ben is slow: he does not hear that Anna takes the silent channel.
    b.js("window.__hold = true", vec![]).await;
    // Once he has been silent for the rule's time, Anna's one take goes through.
    tokio::time::sleep_until(silent_since + std::time::Duration::from_secs(TAKEOVER_AFTER)).await;
    anna.send_json(json!({"type": "take"})).await;
    loop {
        let v = anna.recv().await;
        if v["type"] == "booth" && v["on_air"]["name"] == "Anna" {
            break;
        }
        assert_ne!(
            v["type"], "error",
            "take refused after {TAKEOVER_AFTER} s of silence"
        );
    }
    b.booth_commit("A line the server refused.").await;
    b.wait_eq(
        "sent, as far as the page knows",
        OWN_LINES,
        json!([
            ["1", "note", "Handover: Ben → Anna"],
            ["", "pending", "A line the server refused."]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
    b.js("window.__release()", vec![]).await;
    b.wait_eq(
        "refused line held",
        OWN_LINES,
        json!([
            ["1", "note", "Handover: Ben → Anna"],
            ["", "held", "A line the server refused."]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
    // Standby, as the console says in words: no red badge, the caption box marked.
    b.wait_eq(
        "standby shown",
        "const c = document.getElementById('compose'); return [document.getElementById('onair').textContent, c.classList.contains('standby'), document.getElementById('standby-note').textContent.includes('Anna is on air')]",
        json!(["Standby", true, true]),
        PAGE_TIMEOUT,
    )
    .await;
    let alert = b.text("#alert").await;
    assert!(alert.starts_with("Not sent: Anna is on air"), "{alert}");
    assert!(
        !alert.contains("not_on_air") && !alert.contains("handover_request"),
        "{alert}"
    );
    // Known standby: the next line is held without being sent.
    b.booth_commit("Typed on standby.").await;
    b.wait_eq(
        "both held",
        "return [...document.querySelectorAll('#lines .bline')].map(l => [l.dataset.state, l.querySelector('.state').textContent, l.querySelector('.send-now').hidden])",
        json!([["held", "not sent", true], ["held", "not sent", true]]),
        PAGE_TIMEOUT,
    )
    .await;
    // Ben asks to take over with Alt+A; Anna hands over.
    b.find("#input")
        .await
        .send_keys(&format!("{}a{}", Key::Alt, Key::Null))
        .await
        .expect("Alt+A");
    loop {
        let v = anna.recv_type("booth").await;
        if v["request"]["name"] == "Ben" {
            break;
        }
    }
    anna.send_json(json!({"type": "handover_accept"})).await;
    b.wait_eq(
        "on air, held lines offer Send now",
        "return [document.getElementById('onair').dataset.state, ...[...document.querySelectorAll('#lines .bline .send-now')].map(x => !x.hidden)]",
        json!(["mine", true, true]),
        PAGE_TIMEOUT,
    )
    .await;
    // Longer than the 5 s resend: nothing of Ben's reaches the audience by itself.
    let heard = received_for(&mut listener, std::time::Duration::from_millis(6500)).await;
    let events: Vec<_> = heard
        .iter()
        .filter(|v| !is_meta(v))
        // A partial that clears the line is not Ben's words.
        .filter(|v| v["type"] != "partial" || v["text"] != "")
        .map(|v| (v["type"].clone(), v["seq"].clone()))
        .collect();
    assert_eq!(
        events,
        [(json!("handover"), json!(1)), (json!("handover"), json!(2))],
        "only the two handovers went out: {heard:?}"
    );
    b.wait_eq(
        "notes in seq order before the held lines",
        OWN_LINES,
        json!([
            ["1", "note", "Handover: Ben → Anna"],
            ["2", "note", "Handover: Anna → Ben"],
            ["", "held", "A line the server refused."],
            ["", "held", "Typed on standby."]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
    // Send now, one line at a time.
    b.click("#lines .bline .send-now:not([hidden])").await;
    let line = listener.recv_event().await;
    assert_eq!(
        (&line["seq"], &line["text"]),
        (&json!(3), &json!("A line the server refused."))
    );
    b.click("#lines .bline .send-now:not([hidden])").await;
    let line = listener.recv_event().await;
    assert_eq!(
        (&line["seq"], &line["text"]),
        (&json!(4), &json!("Typed on standby."))
    );
    b.wait_eq(
        "stored in order",
        OWN_LINES,
        json!([
            ["1", "note", "Handover: Ben → Anna"],
            ["2", "note", "Handover: Anna → Ben"],
            ["3", "stored", "A line the server refused."],
            ["4", "stored", "Typed on standby."]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
}

/// Issue 14, item 2: typing Chinese with an input method leaks no keystrokes. Chromium's own
/// IME path (DevTools `Input.imeSetComposition`, then `Input.insertText` to commit) fires
/// compositionstart/update/end and input events as a real input method does: no partial
/// goes out while composing, the committed 中文 does, and Enter during composition commits
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_method_composition_sends_no_partials() {
    let s = TestServer::start().await;
    let b = &Browser::start().await;
    let mut listener = s.listen("en", None).await;
    b.booth_sign_in(&s.http(""), "en", "Li").await;
    b.click("#input").await;
    for pinyin in [
        "z", "zh", "zho", "zhon", "zhong", "zhongw", "zhongwe", "zhongwen",
    ] {
        b.cdp(
            "Input.imeSetComposition",
            json!({"text": pinyin, "selectionStart": pinyin.len(), "selectionEnd": pinyin.len()}),
        )
        .await;
    }
    // Enter while the candidate window is open confirms the word, never the line.
    b.cdp(
        "Input.dispatchKeyEvent",
        json!({"type": "rawKeyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 229}),
    )
    .await;
    b.cdp("Input.insertText", json!({"text": "中文"})).await;
    b.find("#input")
        .await
        .send_keys("字幕")
        .await
        .expect("type");
    let mut partials = Vec::new();
    loop {
        let v = listener.recv().await;
        assert_ne!(v["type"], "line", "nothing was committed: {v}");
        if v["type"] == "partial" {
            partials.push(v["text"].as_str().unwrap().to_string());
            if v["text"] == "中文字幕" {
                break;
            }
        }
    }
    assert!(
        partials
            .iter()
            .all(|p| !p.chars().any(|c| c.is_ascii_alphabetic())),
        "composition leaked as partials: {partials:?}"
    );
    assert_eq!(partials.first().map(String::as_str), Some("中文"));
    b.find("#input")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .expect("Enter");
    let line = listener.recv_event().await;
    assert_eq!(line["text"], "中文字幕", "{line}");
}
