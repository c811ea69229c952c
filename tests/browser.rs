//! The web apps in a real headless Chromium, driven over WebDriver (fantoccini talking to a
//! chromedriver this test starts). One browser session serves every scenario of this file;
//! each scenario starts its own server (a fresh origin, so fresh localStorage) and loads its
//! pages afresh. The browser must start: without chromium and chromedriver the test fails,
//! it never skips (`.ci/run` installs both).

mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// The Chromium binary (Debian package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server (Debian package `chromium-driver`).
const CHROMEDRIVER: &str = "chromedriver";
/// How long chromedriver and the browser may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The issue's bound for a caption to reach the page.
const CAPTION_DEADLINE: Duration = Duration::from_secs(1);
/// Bound for slower page events (first connection, reconnect after a restart).
const PAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Times the browser start is tried with a new port before the test fails.
const START_ATTEMPTS: usize = 3;

/// A chromedriver process and one browser session on it.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Browser {
    async fn start() -> Browser {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start().await {
                Ok(b) => return b,
                Err(e) => last_error = e,
            }
        }
        panic!("headless Chromium could not start (install chromium and chromium-driver): {last_error}");
    }

    async fn try_start() -> Result<Browser, String> {
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {CHROMEDRIVER}: {e}"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        // Poll until chromedriver listens (or gives up, e.g. because the port was taken).
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = driver.try_wait() {
                return Err(format!("{CHROMEDRIVER} exited: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{CHROMEDRIVER} did not listen on port {port}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1024,768",
                    "--lang=en-US",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        let connect = builder.connect(&url);
        let client = match tokio::time::timeout(START_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let _ = driver.kill().await;
                return Err(format!("new session: {e}"));
            }
            Err(_) => {
                let _ = driver.kill().await;
                return Err("new session timed out".into());
            }
        };
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .expect("script runs")
    }

    /// Polls `script` until it returns `want`, failing after `within`.
    async fn wait_eq(&self, what: &str, script: &str, want: Value, within: Duration) -> Duration {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < within {
            last = self.js(script, vec![]).await;
            if last == want {
                return start.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what}: wanted {want} within {within:?}, last saw {last}");
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Waits until the page's connection badge says live.
    async fn wait_live(&self, badge: &str) {
        self.wait_eq(
            "connection state",
            &format!("return document.querySelector({badge:?}).dataset.state"),
            json!("live"),
            PAGE_TIMEOUT,
        )
        .await;
    }

    /// Sizes the viewport (not the window) to `w`×`h` CSS pixels.
    async fn viewport(&self, w: i64, h: i64) {
        self.client
            .set_window_size(w as u32, h as u32)
            .await
            .expect("resize");
        let inner = self.js("return [innerWidth, innerHeight]", vec![]).await;
        let (iw, ih) = (inner[0].as_i64().unwrap(), inner[1].as_i64().unwrap());
        if (iw, ih) != (w, h) {
            self.client
                .set_window_size((2 * w - iw) as u32, (2 * h - ih) as u32)
                .await
                .expect("resize");
        }
        let inner = self.js("return [innerWidth, innerHeight]", vec![]).await;
        assert_eq!(inner, json!([w, h]), "viewport size");
    }
}

/// Lines shown in the attendee page's main pane, as [seq, text, lang].
const MAIN_LINES: &str = "return [...document.querySelectorAll('#pane-main .log .line')].map(l => [l.dataset.seq, l.textContent, l.lang])";
/// The partial shown in the main pane ("" when hidden).
const MAIN_PARTIAL: &str =
    "const p = document.querySelector('#pane-main .partial'); return p.hidden ? '' : p.textContent";

/// A published partial and then a final appear within a second; an edit applies in place.
async fn captions_appear_within_a_second(b: &Browser) {
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
async fn markup_in_captions_is_text(b: &Browser) {
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
async fn settings_survive_a_reload(b: &Browser) {
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
async fn resumes_after_a_restart_without_duplicates(b: &Browser) {
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

/// Typing in the booth reaches the attendee page (partial, then the committed line); acks
/// mark the line stored; clicking a line corrects it; the source runs beside the input.
async fn booth_typing_reaches_attendees(b: &Browser) {
    let s = TestServer::start().await;
    let attendee = b.client.window().await.expect("window");
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    let booth = b.client.new_window(false).await.expect("new window").handle;
    b.client
        .switch_to_window(booth.clone())
        .await
        .expect("switch");
    b.goto(&s.http("/booth/conf")).await;
    // A wrong token is refused on the sign-in form.
    b.find("#sel-channel")
        .await
        .select_by_value("en")
        .await
        .expect("pick en");
    b.find("#token")
        .await
        .send_keys("wrong")
        .await
        .expect("type");
    b.find("#signin button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");
    b.wait_eq(
        "wrong token refused",
        "const e = document.getElementById('signin-error'); return !e.hidden && e.textContent.includes('cannot publish')",
        json!(true),
        PAGE_TIMEOUT,
    )
    .await;
    let tok = b.find("#token").await;
    tok.clear().await.expect("clear");
    tok.send_keys(&token("en")).await.expect("type");
    b.find("#name").await.send_keys("Ana").await.expect("type");
    b.find("#signin button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");
    b.wait_live("#conn").await;
    // The floor runs beside the input.
    let mut floor = s.publish("floor").await;
    floor.final_line("大家好，欢迎各位。", Some("f1")).await;
    b.wait_eq(
        "source pane",
        "return [...document.querySelectorAll('#pane-source .line')].map(l => [l.textContent, l.lang])",
        json!([["大家好，欢迎各位。", "zh"]]),
        PAGE_TIMEOUT,
    )
    .await;
    let input = b.find("#input").await;
    input
        .send_keys("Hello everyone and welc")
        .await
        .expect("type");
    b.client
        .switch_to_window(attendee.clone())
        .await
        .expect("switch");
    b.wait_eq(
        "booth partial on the attendee page",
        MAIN_PARTIAL,
        json!("Hello everyone and welc"),
        CAPTION_DEADLINE,
    )
    .await;
    b.client
        .switch_to_window(booth.clone())
        .await
        .expect("switch");
    input.send_keys("ome.").await.expect("type");
    input
        .send_keys(&Key::Enter.to_string())
        .await
        .expect("enter");
    b.wait_eq(
        "booth line stored",
        "return [...document.querySelectorAll('#lines .bline')].map(l => [l.dataset.seq, l.dataset.state, l.querySelector('.btext').textContent])",
        json!([["1", "stored", "Hello everyone and welcome."]]),
        PAGE_TIMEOUT,
    )
    .await;
    assert_eq!(
        input.prop("value").await.expect("value").as_deref(),
        Some("")
    );
    b.client
        .switch_to_window(attendee.clone())
        .await
        .expect("switch");
    b.wait_eq(
        "booth final on the attendee page",
        MAIN_LINES,
        json!([["1", "Hello everyone and welcome.", "en"]]),
        CAPTION_DEADLINE,
    )
    .await;
    // Correct the line: click it, retype, Enter.
    b.client
        .switch_to_window(booth.clone())
        .await
        .expect("switch");
    b.find("#lines .bline .btext")
        .await
        .click()
        .await
        .expect("pick line");
    b.wait_eq(
        "input holds the line",
        "return document.getElementById('input').value",
        json!("Hello everyone and welcome."),
        PAGE_TIMEOUT,
    )
    .await;
    input.clear().await.expect("clear");
    input
        .send_keys(&format!("Hello everyone, and welcome!{}", Key::Enter))
        .await
        .expect("type");
    b.client
        .switch_to_window(attendee.clone())
        .await
        .expect("switch");
    b.wait_eq(
        "correction on the attendee page",
        "const l = document.querySelector('#pane-main .line[data-seq=\"1\"]'); return l && [l.textContent, l.classList.contains('edited')]",
        json!(["Hello everyone, and welcome!", true]),
        CAPTION_DEADLINE,
    )
    .await;
    b.client
        .switch_to_window(booth.clone())
        .await
        .expect("switch");
    b.wait_eq(
        "booth line corrected and stored",
        "return [...document.querySelectorAll('#lines .bline')].map(l => [l.dataset.state, l.querySelector('.btext').textContent])",
        json!([["stored", "Hello everyone, and welcome!"]]),
        PAGE_TIMEOUT,
    )
    .await;
    // A line in the wrong language is flagged in the booth.
    input
        .send_keys(&format!(
            "我们今天讨论中小企业的数字化转型，以及政府如何支持它们。{}",
            Key::Enter
        ))
        .await
        .expect("type");
    b.wait_eq(
        "language mismatch flagged",
        "const l = document.querySelector('#lines .bline.mismatch .warn'); return l && l.textContent",
        json!("⚠ Detected 中文 (zh); this channel is English (en)"),
        PAGE_TIMEOUT,
    )
    .await;
    // Audience feedback from the attendee page reaches the booth.
    b.client
        .switch_to_window(attendee.clone())
        .await
        .expect("switch");
    b.find("#settings-btn")
        .await
        .click()
        .await
        .expect("settings");
    b.find("button[data-feedback=slower]")
        .await
        .click()
        .await
        .expect("slower");
    b.find("#settings-close")
        .await
        .click()
        .await
        .expect("close");
    b.client
        .switch_to_window(booth.clone())
        .await
        .expect("switch");
    b.wait_eq(
        "feedback in the booth",
        "return document.getElementById('feedback').textContent",
        json!("Audience: slower ×1"),
        PAGE_TIMEOUT,
    )
    .await;
    shot(b, "booth-1024x768.png").await;
    b.client.close_window().await.expect("close booth");
    b.client.switch_to_window(attendee).await.expect("switch");
}

/// The dashboard shows every channel with counts and raises a silent-booth alert.
async fn dashboard_shows_channels_and_alerts(b: &Browser) {
    let s = TestServer::start().await;
    let _listener = s.listen("en", None).await;
    let mut floor = s.publish("floor").await;
    floor.final_line("Bonjour à tous.", Some("f1")).await;
    floor.final_line("Merci d'être venus.", Some("f2")).await;
    b.goto(&s.http("/admin")).await;
    b.find("#token")
        .await
        .send_keys(ADMIN_TOKEN)
        .await
        .expect("type");
    b.find("#signin button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");
    b.wait_live("#conn").await;
    let row = |key: &str, cell: &str| {
        format!("const r = document.querySelector('tr[data-key=\"conf/{key}\"]'); return r && r.querySelector('{cell}').textContent")
    };
    b.wait_eq(
        "en listeners",
        &row("en", ".listeners"),
        json!("1"),
        PAGE_TIMEOUT,
    )
    .await;
    b.wait_eq(
        "floor rate",
        &row("floor", ".rate"),
        json!("2"),
        PAGE_TIMEOUT,
    )
    .await;
    b.wait_eq(
        "floor on air",
        &row("floor", ".onair"),
        json!("On air"),
        PAGE_TIMEOUT,
    )
    .await;
    b.wait_eq(
        "silent booth",
        "return !!document.querySelector('tr[data-key=\"conf/zh\"] .badge.silent_booth')",
        json!(true),
        PAGE_TIMEOUT,
    )
    .await;
    shot(b, "admin-1024x768.png").await;
}

/// Saves a screenshot of the current window under `target/screenshots/`.
async fn shot(b: &Browser, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = b.client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(name), png).expect("save screenshot");
}

/// The attendee page on a 360×640 phone, saved for people to look at.
async fn phone_screenshot(b: &Browser) {
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
    shot(b, "attendee-360x640.png").await;
    // The settings sheet, the dual view and high contrast, for the same look at small sizes.
    b.find("#settings-btn")
        .await
        .click()
        .await
        .expect("settings");
    shot(b, "attendee-360x640-settings.png").await;
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
    shot(b, "attendee-360x640-dual-contrast.png").await;
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

/// Scrolling back pauses auto-scroll and shows "jump to live"; the button resumes it.
async fn scrolling_back_pauses_auto_scroll(b: &Browser) {
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
async fn arabic_is_right_to_left(b: &Browser) {
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
        json!(["Floor", "English", "中文", "Français", "العربية"])
    );
}

/// The landing page lists events with live counts and loads a QR code per event and channel.
async fn landing_lists_events_with_qr_codes(b: &Browser) {
    let s = TestServer::start().await;
    let _l = s.listen("zh", None).await;
    b.goto(&s.http("/")).await;
    b.wait_eq(
        "zh count",
        "const li = document.querySelector('[data-channel=\"zh\"] .count'); return li && li.textContent",
        json!("1 listening"),
        PAGE_TIMEOUT,
    )
    .await;
    b.wait_eq(
        "event QR loaded",
        "const i = document.querySelector('.event-head img.qr'); return !!i && i.complete && i.naturalWidth > 0",
        json!(true),
        PAGE_TIMEOUT,
    )
    .await;
    let links = b
        .js(
            "return [...document.querySelectorAll('.channels a.chan')].map(a => a.getAttribute('href'))",
            vec![],
        )
        .await;
    assert_eq!(links[2], "/e/conf?channel=zh");
    b.find("[data-channel=\"zh\"] summary")
        .await
        .click()
        .await
        .expect("open QR");
    shot(b, "landing-1024x768.png").await;
}

/// Runs one scenario, turning a panic into a recorded failure so the others still run.
async fn scenario(name: &str, failures: &mut Vec<String>, f: impl Future<Output = ()>) {
    let started = Instant::now();
    match AssertUnwindSafe(f).catch_unwind().await {
        Ok(()) => eprintln!("ok   {name} ({:?})", started.elapsed()),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("FAIL {name}: {msg}");
            failures.push(format!("{name}: {msg}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_apps_in_headless_chromium() {
    let b = Browser::start().await;
    let mut failures = Vec::new();
    let f = &mut failures;
    scenario(
        "captions appear within a second",
        f,
        captions_appear_within_a_second(&b),
    )
    .await;
    scenario(
        "markup in captions is text",
        f,
        markup_in_captions_is_text(&b),
    )
    .await;
    scenario(
        "settings survive a reload",
        f,
        settings_survive_a_reload(&b),
    )
    .await;
    scenario(
        "resumes after a restart without duplicates",
        f,
        resumes_after_a_restart_without_duplicates(&b),
    )
    .await;
    scenario(
        "booth typing reaches attendees",
        f,
        booth_typing_reaches_attendees(&b),
    )
    .await;
    scenario(
        "dashboard shows channels and alerts",
        f,
        dashboard_shows_channels_and_alerts(&b),
    )
    .await;
    scenario(
        "scrolling back pauses auto-scroll",
        f,
        scrolling_back_pauses_auto_scroll(&b),
    )
    .await;
    scenario("arabic is right to left", f, arabic_is_right_to_left(&b)).await;
    scenario(
        "landing lists events with QR codes",
        f,
        landing_lists_events_with_qr_codes(&b),
    )
    .await;
    scenario("phone screenshot 360x640", f, phone_screenshot(&b)).await;
    b.close().await;
    assert!(
        failures.is_empty(),
        "browser scenarios failed:\n{}",
        failures.join("\n")
    );
}
