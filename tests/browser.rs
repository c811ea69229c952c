//! The attendee page in a real headless Chromium (tests/common/browser.rs): captions within a
//! second, markup shown as text, settings across a reload, resume after a restart without
//! duplicates, auto-scroll, right to left, and a phone-sized look. Each scenario is its own
//! test with its own server (a fresh origin, so fresh localStorage) and its own browser.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Instant;

use browser::*;
use common::*;
use serde_json::{json, Value};

/// A published partial and then a final appear within a second; an edit applies in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captions_appear_within_a_second() {
    let b = &Browser::start().await;
    let s = TestServer::start().await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    let mut p = s.publish("en").await;
    p.send_json(json!({"type": "partial", "text": "Good morning every"}))
        .await;
    b.wait_eq(
        "partial",
        MAIN_PARTIAL,
        json!("Good morning every"),
        CAPTION_DEADLINE,
    )
    .await;
    let sent = Instant::now();
    p.send_json(
        json!({"type": "final", "text": "Good morning everyone, and welcome.", "id": "a1"}),
    )
    .await;
    b.wait_eq(
        "final line",
        MAIN_LINES,
        json!([["1", "Good morning everyone, and welcome.", "en"]]),
        CAPTION_DEADLINE,
    )
    .await;
    assert!(sent.elapsed() < CAPTION_DEADLINE);
    b.wait_eq("partial cleared", MAIN_PARTIAL, json!(""), CAPTION_DEADLINE)
        .await;
    assert_eq!(p.recv_type("ack").await["seq"], 1);
    p.send_json(json!({"type": "edit", "of": 1, "text": "Good morning, everyone!"}))
        .await;
    b.wait_eq(
        "edit in place",
        "const l = document.querySelector('#pane-main .line[data-seq=\"1\"]'); return [l.textContent, l.classList.contains('edited'), document.querySelectorAll('#pane-main .line').length]",
        json!(["Good morning, everyone!", true, 1]),
        CAPTION_DEADLINE,
    )
    .await;
    // Accessibility contract: committed lines in a polite log, the partial hidden from it.
    let a11y = b
        .js(
            "const log = document.querySelector('#pane-main .log'); return [log.getAttribute('role'), log.getAttribute('aria-live'), document.querySelector('#pane-main .partial').getAttribute('aria-hidden')]",
            vec![],
        )
        .await;
    assert_eq!(a11y, json!(["log", "polite", "true"]));
}

/// Caption text containing markup is shown as text: no element is created, no script runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_captions_is_text() {
    let b = &Browser::start().await;
    let s = TestServer::start().await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    let mut p = s.publish("en").await;
    let evil = r#"<img src=x onerror="document.title='pwned'"> <b>bold</b> & more"#;
    p.send_json(json!({"type": "partial", "text": evil})).await;
    b.wait_eq(
        "partial as text",
        MAIN_PARTIAL,
        json!(evil),
        CAPTION_DEADLINE,
    )
    .await;
    p.final_line(evil, Some("x1")).await;
    b.wait_eq(
        "line as text",
        MAIN_LINES,
        json!([["1", evil, "en"]]),
        CAPTION_DEADLINE,
    )
    .await;
    let found = b
        .js(
            "return [document.querySelectorAll('main img, main b').length, document.title]",
            vec![],
        )
        .await;
    assert_eq!(found[0], 0, "markup became elements");
    assert_ne!(found[1], "pwned", "a caption ran script");
}

/// Font size, theme and line spacing are kept in localStorage across a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_survive_a_reload() {
    let b = &Browser::start().await;
    let s = TestServer::start().await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    b.find("#settings-btn")
        .await
        .click()
        .await
        .expect("open settings");
    let larger = b.find("#larger").await;
    for _ in 0..10 {
        larger.click().await.expect("A+");
    }
    b.find("input[name=theme][value=light]")
        .await
        .click()
        .await
        .expect("light theme");
    b.find("input[name=spacing][value=relaxed]")
        .await
        .click()
        .await
        .expect("relaxed spacing");
    let before = b
        .js(
            "return [document.getElementById('size-out').textContent, getComputedStyle(document.querySelector('#pane-main .log')).fontSize]",
            vec![],
        )
        .await;
    assert_eq!(before, json!(["200%", "48px"]), "A+ ten times is 200%");
    b.client.refresh().await.expect("reload");
    b.wait_live("#conn").await;
    let after = b
        .js(
            "const log = document.querySelector('#pane-main .log'); const cs = getComputedStyle(log); return [document.documentElement.dataset.theme, document.documentElement.dataset.spacing, cs.fontSize, cs.backgroundColor === getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).backgroundColor]",
            vec![],
        )
        .await;
    assert_eq!(after[0], "light");
    assert_eq!(after[1], "relaxed");
    assert_eq!(after[2], "48px", "font size after reload");
    assert_eq!(
        after[4], "rgb(251, 250, 247)",
        "light background after reload"
    );
}

/// After a server restart (same address) the page reconnects with since= and shows every line
/// exactly once, including lines committed while it was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_restart_without_duplicates() {
    let b = &Browser::start().await;
    let mut s = TestServer::start().await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    let mut p = s.publish("en").await;
    for i in 1..=3 {
        p.final_line(
            &format!("Line {i} before the restart."),
            Some(&format!("b{i}")),
        )
        .await;
    }
    b.wait_eq(
        "lines before restart",
        "return document.querySelectorAll('#pane-main .line').length",
        json!(3),
        CAPTION_DEADLINE,
    )
    .await;
    drop(p);
    s.restart_same_port().await;
    // Published at once, most likely before the page is back: it must get them via since=.
    let mut p = s.publish("en").await;
    for i in 4..=5 {
        p.final_line(
            &format!("Line {i} after the restart."),
            Some(&format!("b{i}")),
        )
        .await;
    }
    b.wait_eq(
        "reconnected",
        "const c = document.getElementById('conn'); return [c.dataset.state, c.dataset.connections]",
        json!(["live", "2"]),
        PAGE_TIMEOUT,
    )
    .await;
    let want: Vec<Value> = (1..=5)
        .map(|i| {
            let when = if i <= 3 { "before" } else { "after" };
            json!([i.to_string(), format!("Line {i} {when} the restart."), "en"])
        })
        .collect();
    b.wait_eq("every line once", MAIN_LINES, json!(want), PAGE_TIMEOUT)
        .await;
    p.final_line("Line 6, live again.", Some("b6")).await;
    b.wait_eq(
        "live after resume",
        "return [...document.querySelectorAll('#pane-main .line')].map(l => l.dataset.seq).join()",
        json!("1,2,3,4,5,6"),
        CAPTION_DEADLINE,
    )
    .await;
}

/// Scrolling back pauses auto-scroll and shows "jump to live"; the button resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_back_pauses_auto_scroll() {
    let b = &Browser::start().await;
    let s = TestServer::start().await;
    let mut p = s.publish("en").await;
    for i in 1..=30 {
        p.final_line(
            &format!("Line {i} of a long morning session."),
            Some(&format!("l{i}")),
        )
        .await;
    }
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    const AT_EDGE: &str = "const s = document.querySelector('#pane-main .scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight < 2";
    const JUMP: &str = "const j = document.querySelector('#pane-main .jump'); return j.hidden ? null : j.textContent";
    b.wait_eq("follows the live edge", AT_EDGE, json!(true), PAGE_TIMEOUT)
        .await;
    b.js(
        "document.querySelector('#pane-main .scroller').scrollTop = 0",
        vec![],
    )
    .await;
    b.wait_eq("jump button", JUMP, json!("Jump to live ↓"), PAGE_TIMEOUT)
        .await;
    p.final_line("Line 31 arrives while reading back.", Some("l31"))
        .await;
    b.wait_eq(
        "counts unseen",
        JUMP,
        json!("Jump to live (1 new) ↓"),
        CAPTION_DEADLINE,
    )
    .await;
    let top = b
        .js(
            "return document.querySelector('#pane-main .scroller').scrollTop",
            vec![],
        )
        .await;
    assert_eq!(
        top,
        json!(0),
        "a new line must not move a reader who scrolled back"
    );
    b.find("#pane-main .jump")
        .await
        .click()
        .await
        .expect("jump");
    b.wait_eq("back at the live edge", AT_EDGE, json!(true), PAGE_TIMEOUT)
        .await;
    b.wait_eq("button gone", JUMP, Value::Null, PAGE_TIMEOUT)
        .await;
}

/// Arabic is laid out right to left, and the picker names every language in itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arabic_is_right_to_left() {
    let b = &Browser::start().await;
    let s = TestServer::start_with(|c| {
        let mut ar = c.events[0].channels[1].clone();
        ar.id = toml::Spanned::new(0..0, "ar".to_string());
        ar.lang = toml::Spanned::new(0..0, "ar".to_string());
        ar.label = String::new();
        ar.source = None;
        ar.publish_tokens = vec![token("ar")];
        c.events[0].channels.push(ar);
    })
    .await;
    b.goto(&s.http("/e/conf?channel=ar")).await;
    b.wait_live("#conn").await;
    let mut p = s.publish("ar").await;
    p.final_line("صباح الخير للجميع، ومرحبا بكم في المؤتمر.", Some("a1"))
        .await;
    b.wait_eq(
        "arabic line",
        "const l = document.querySelector('#pane-main .line'); return l && [l.lang, l.dir, getComputedStyle(l).direction, document.getElementById('pane-main').dir]",
        json!(["ar", "rtl", "rtl", "rtl"]),
        CAPTION_DEADLINE,
    )
    .await;
    let names = b
        .js(
            "return [...document.querySelectorAll('#channel option')].map(o => o.textContent)",
            vec![],
        )
        .await;
    assert_eq!(
        names,
        // The floor has no language of its own: it is named in the page's (Arabic).
        json!(["لغة القاعة", "English", "中文", "Français", "العربية"])
    );
}

/// The attendee page on a 360×640 phone, saved for people to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_screenshot() {
    let b = &Browser::start().await;
    let s = TestServer::start().await;
    let mut floor = s.publish("floor").await;
    floor
        .final_line("我们今天讨论中小企业的数字化转型。", Some("f1"))
        .await;
    let mut p = s.publish("en").await;
    for (i, text) in [
        "Good morning, everyone, and welcome to the World SME Conference.",
        "Today we will talk about how small firms can go digital without losing what makes them strong.",
        "Our first speaker runs a family business of forty people in Chengdu.",
    ]
    .iter()
    .enumerate()
    {
        p.final_line(text, Some(&format!("s{i}"))).await;
    }
    b.viewport(360, 640).await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    p.send_json(json!({"type": "partial", "text": "She started with a single online"}))
        .await;
    b.wait_eq(
        "partial",
        MAIN_PARTIAL,
        json!("She started with a single online"),
        CAPTION_DEADLINE,
    )
    .await;
    b.shot("attendee-360x640.png").await;
    // The settings sheet, the dual view and high contrast, for the same look at small sizes.
    b.find("#settings-btn")
        .await
        .click()
        .await
        .expect("settings");
    b.shot("attendee-360x640-settings.png").await;
    b.find("#dual").await.click().await.expect("dual view");
    b.find("input[name=theme][value=contrast]")
        .await
        .click()
        .await
        .expect("contrast");
    b.find("#settings-close")
        .await
        .click()
        .await
        .expect("close");
    b.wait_eq(
        "floor beside",
        "return [...document.querySelectorAll('#pane-floor .line')].map(l => l.lang).join()",
        json!("zh"),
        PAGE_TIMEOUT,
    )
    .await;
    // Following the live edge survives the pane shrinking to half the screen.
    b.wait_eq(
        "main pane at the live edge",
        "const s = document.querySelector('#pane-main .scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight < 2",
        json!(true),
        PAGE_TIMEOUT,
    )
    .await;
    b.shot("attendee-360x640-dual-contrast.png").await;
    // The page must not scroll sideways on a phone.
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth <= innerWidth",
            vec![],
        )
        .await;
    assert_eq!(overflow, json!(true), "horizontal overflow at 360 px");
    b.viewport(1024, 768).await;
}
