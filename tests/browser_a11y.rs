//! Accessibility measured, not assumed: axe-core (the npm package, injected into the page)
//! on every page and state people use, in a real headless Chromium (tests/common/browser.rs).
//! axe-core comes from `web-tests/` (`npm ci`, which `.ci/run` does); without it these tests
//! fail.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::*;
use common::*;
use serde_json::json;

/// A channel with captions, a correction and a partial, and a floor with a line.
async fn captions(s: &TestServer) -> WsClient {
    let mut floor = s.publish("floor").await;
    floor
        .final_line("我们今天讨论中小企业的数字化转型。", Some("f1"))
        .await;
    let mut p = s.publish("en").await;
    p.final_line("Good morning, and welcome.", Some("a1")).await;
    p.final_line("Today we talk about small firms.", Some("a2"))
        .await;
    p.send_json(json!({"type": "edit", "of": 1, "text": "Good morning, everyone."}))
        .await;
    p.recv_event().await;
    p.send_json(json!({"type": "partial", "text": "Our first speaker"}))
        .await;
    p
}

/// Issue 14, item 6: the attendee page in each theme, with the settings open and closed, in
/// dual view, and in Arabic; the landing page; the hall screen on each background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendee_landing_and_hall_screen_have_no_violations() {
    let s = TestServer::start().await;
    let _p = captions(&s).await;
    let b = &Browser::start().await;
    b.goto(&s.http("/")).await;
    b.wait_true(
        "events listed",
        "return !!document.querySelector('.channels .count')",
    )
    .await;
    b.assert_accessible("the landing page").await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    b.wait_eq(
        "partial",
        MAIN_PARTIAL,
        json!("Our first speaker"),
        PAGE_TIMEOUT,
    )
    .await;
    for theme in ["dark", "light", "contrast"] {
        b.click("#settings-btn").await;
        b.click(&format!("input[name=theme][value={theme}]")).await;
        b.assert_accessible(&format!("the attendee page, {theme}, settings open"))
            .await;
        b.click("#settings-close").await;
        b.assert_accessible(&format!("the attendee page, {theme}"))
            .await;
    }
    // Dual view, scrolled back (the jump button shows).
    b.click("#settings-btn").await;
    b.click("#dual").await;
    b.click("#settings-close").await;
    b.wait_true(
        "floor beside",
        "return document.querySelectorAll('#pane-floor .line').length === 1",
    )
    .await;
    b.viewport(360, 640).await;
    b.click("#settings-btn").await;
    b.click("input[name=theme][value=dark]").await;
    b.click("#settings-close").await;
    b.assert_accessible("the attendee page, dual view on a phone")
        .await;
    b.viewport(1024, 768).await;
    b.goto(&s.http("/e/conf?channel=zh")).await;
    b.wait_live("#conn").await;
    b.assert_accessible("the attendee page in Chinese").await;
    for bg in ["black", "transparent", "green"] {
        b.goto(&s.http(&format!("/e/conf/display?ch=floor,en&lines=3&bg={bg}")))
            .await;
        b.wait_true(
            "captions on the hall screen",
            "return document.querySelectorAll('.block .row').length >= 3",
        )
        .await;
        b.assert_accessible(&format!("the hall screen on {bg}"))
            .await;
    }
}

/// Issue 14, item 6: the booth signed out, on air (with a correction under way) and on
/// standby (with a held line and an alert), and the dashboard signed out and in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booth_and_dashboard_have_no_violations() {
    let s = TestServer::start().await;
    let _p = captions(&s).await;
    let b = &Browser::start().await;
    b.goto(&s.http("/booth/conf")).await;
    b.find("#token").await;
    b.assert_accessible("the booth sign-in").await;
    // The fr booth: its source (en) runs beside, and nobody else is on it.
    b.booth_sign_in(&s.http(""), "fr", "Chloé").await;
    b.find("#input")
        .await
        .send_keys("Bonjour à tous.\u{E007}")
        .await
        .expect("type");
    b.wait_true(
        "stored",
        "return !!document.querySelector('#lines .bline[data-state=stored]')",
    )
    .await;
    b.assert_accessible("the booth, on air").await;
    let mut partner = s.publish_as("fr", "Dom").await;
    partner.send_json(json!({"type": "handover_request"})).await;
    b.wait_true(
        "hand over offered",
        "return !document.getElementById('accept').hidden",
    )
    .await;
    b.click("#accept").await;
    b.wait_eq(
        "standby",
        "return document.getElementById('onair').dataset.state",
        json!("standby"),
        PAGE_TIMEOUT,
    )
    .await;
    b.find("#input")
        .await
        .send_keys("Une phrase en attente.\u{E007}")
        .await
        .expect("type");
    b.wait_true(
        "held, with an alert",
        "return !!document.querySelector('#lines .bline[data-state=held]') && !document.getElementById('alert').hidden",
    )
    .await;
    b.assert_accessible("the booth, on standby").await;
    b.goto(&s.http("/admin")).await;
    b.find("#token").await;
    b.assert_accessible("the dashboard sign-in").await;
    b.find("#token")
        .await
        .send_keys(ADMIN_TOKEN)
        .await
        .expect("type");
    b.click("#signin button[type=submit]").await;
    b.wait_true(
        "rows",
        "return document.querySelectorAll('#rows tr').length === 4",
    )
    .await;
    b.assert_accessible("the dashboard").await;
    b.viewport(360, 640).await;
    b.assert_accessible("the dashboard on a phone").await;
}

/// Issue 14, item 6: what a screen reader hears of the connection badge (a `role=status`
/// region) changes with the state, not with every second of the reconnect countdown, which
/// stays on screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_region_is_not_read_every_second() {
    let mut s = TestServer::start().await;
    let b = &Browser::start().await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    // Every text the region takes: as heard (aria-hidden parts left out) and as seen.
    b.js(
        "window.__heard = new Set(); window.__seen = new Set(); const c = document.getElementById('conn');
         new MutationObserver(() => {
           const w = c.cloneNode(true); w.querySelectorAll('[aria-hidden=true]').forEach(n => n.remove());
           __heard.add(w.textContent); __seen.add(c.textContent);
         }).observe(c, { subtree: true, childList: true, characterData: true, attributes: true });",
        vec![],
    )
    .await;
    s.stop().await;
    // Long enough for the backoff to reach delays of several seconds, counted down on screen.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let heard = b
        .js(
            "return [[...__heard].sort(), [...__seen].some(t => /\\d s$/.test(t))]",
            vec![],
        )
        .await;
    assert_eq!(
        heard,
        json!([["Connecting…", "Reconnecting…"], true]),
        "[what a screen reader hears, a countdown on screen]"
    );
    b.assert_accessible("the attendee page, reconnecting").await;
}
