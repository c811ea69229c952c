//! Headless Chromium for the page tests: a chromedriver this helper starts, one browser session
//! per test (fantoccini over WebDriver), the DevTools protocol for what WebDriver cannot do
//! (network conditions, input methods, locale), axe-core injected for accessibility checks,
//! and screenshots. The browser must start: without chromium and chromedriver a test fails,
//! it never skips (`.ci/run` installs both, and axe-core with npm).
//!
//! Include it with `#[path = "common/browser.rs"] mod browser;` next to `mod common;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// The Chromium binary (Debian package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server (Debian package `chromium-driver`).
const CHROMEDRIVER: &str = "chromedriver";
/// How long chromedriver and the browser may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Times the browser start is tried with a new port before the test fails.
const START_ATTEMPTS: usize = 3;
/// The bound for a caption to reach the page.
pub const CAPTION_DEADLINE: Duration = Duration::from_secs(1);
/// Bound for slower page events (first connection, reconnect after a restart).
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a condition is polled in the page.
const POLL: Duration = Duration::from_millis(20);
/// axe-core, installed by `npm ci` in `web-tests/` (`.ci/run` does it).
const AXE: &str = "web-tests/node_modules/axe-core/axe.min.js";

/// A chromedriver process (in its own process group, with the browser it starts) and one
/// browser session on it. Dropping it kills the whole group, so a failed test leaves no
/// browser behind.
pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            // The group chromedriver leads: it and every browser process it started.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
    }
}

impl Browser {
    /// A browser with a 1024×768 window and English as its language.
    pub async fn start() -> Browser {
        Self::start_with(&[]).await
    }

    /// The same with extra Chromium switches (e.g. a fake microphone playing a file).
    pub async fn start_with(extra: &[String]) -> Browser {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(extra).await {
                Ok(b) => return b,
                Err(e) => last_error = e,
            }
        }
        panic!("headless Chromium could not start (install chromium and chromium-driver): {last_error}");
    }

    async fn try_start(extra: &[String]) -> Result<Browser, String> {
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
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
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--window-size=1024,768".into(),
            "--lang=en-US".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(extra.iter().cloned());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        let client = match tokio::time::timeout(START_TIMEOUT, builder.connect(&url)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("new session: {e}")),
            Err(_) => return Err("new session timed out".into()),
        };
        let session = client
            .session_id()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no session id")?;
        Ok(Browser {
            client,
            driver,
            port,
            session,
            http: reqwest::Client::new(),
            _profile: profile,
        })
    }

    /// Ends the session (the browser quits), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs an async script: its last argument is the callback to call with the result.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns `want`, failing after `within`.
    pub async fn wait_eq(
        &self,
        what: &str,
        script: &str,
        want: Value,
        within: Duration,
    ) -> Duration {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < within {
            last = self.js(script, vec![]).await;
            if last == want {
                return start.elapsed();
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("{what}: wanted {want} within {within:?}, last saw {last}");
    }

    /// Polls `script` until it returns `true` (within [`PAGE_TIMEOUT`]).
    pub async fn wait_true(&self, what: &str, script: &str) {
        self.wait_eq(what, script, json!(true), PAGE_TIMEOUT).await;
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
                vec![json!(css)],
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the page's connection badge says live.
    pub async fn wait_live(&self, badge: &str) {
        self.wait_eq(
            "connection state",
            &format!("return document.querySelector({badge:?}).dataset.state"),
            json!("live"),
            PAGE_TIMEOUT,
        )
        .await;
    }

    /// Sizes the viewport (not the window) to `w`×`h` CSS pixels.
    pub async fn viewport(&self, w: i64, h: i64) {
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

    /// Runs a Chrome DevTools Protocol command in the current page's target (through
    /// chromedriver's `goog/cdp/execute`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/session/{}/goog/cdp/execute",
            self.port, self.session
        );
        let res = self
            .http
            .post(&url)
            .json(&json!({"cmd": cmd, "params": params}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        let status = res.status();
        let body: Value = res.json().await.expect("chromedriver answers JSON");
        assert!(status.is_success(), "{cmd} failed: {body}");
        body["value"].clone()
    }

    /// Presses and releases one key (a WebDriver key action on whatever has the focus).
    pub async fn press(&self, key: fantoccini::key::Key) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let value: char = key.into();
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.client
            .perform_actions(keys)
            .await
            .expect("press a key");
    }

    /// Runs `script` in every page this tab loads from now on, before the page's own scripts
    /// (test instrumentation, e.g. wrapping `WebSocket`).
    pub async fn init_script(&self, script: &str) {
        self.cdp("Page.enable", json!({})).await;
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": script }),
        )
        .await;
    }

    /// Opens the booth of `channel`, signs in as `name` and waits until it is connected.
    pub async fn booth_sign_in(&self, base: &str, channel: &str, name: &str) {
        self.goto(&format!("{base}/booth/conf?channel={channel}"))
            .await;
        let token = format!("token-{channel}-secret");
        self.find("#token")
            .await
            .send_keys(&token)
            .await
            .expect("type the token");
        self.find("#name")
            .await
            .send_keys(name)
            .await
            .expect("type the name");
        self.click("#signin button[type=submit]").await;
        self.wait_live("#conn").await;
    }

    /// Types `text` into the booth's caption box and presses Enter.
    pub async fn booth_commit(&self, text: &str) {
        self.find("#input")
            .await
            .send_keys(&format!("{text}{}", fantoccini::key::Key::Enter))
            .await
            .expect("type a line");
    }

    /// Emulates the network: `offline` cuts every connection of the page (and fires its
    /// `offline` event); `latency_ms` delays every request.
    pub async fn network(&self, offline: bool, latency_ms: u64) {
        self.cdp("Network.enable", json!({})).await;
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({
                "offline": offline,
                "latency": latency_ms,
                "downloadThroughput": -1,
                "uploadThroughput": -1,
            }),
        )
        .await;
    }

    /// Runs axe-core on the page as it is now and fails naming every violation.
    pub async fn assert_accessible(&self, what: &str) {
        let violations = self.axe().await;
        assert!(
            violations.is_empty(),
            "axe-core found {} violation(s) on {what}:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }

    /// axe-core's violations on the page as it is now, one line each: every rule axe runs by
    /// default (WCAG 2.x A and AA, best practices) and the visible-label-in-name rule.
    pub async fn axe(&self) -> Vec<String> {
        let loaded = self
            .js("return typeof window.axe === 'object'", vec![])
            .await;
        if loaded != json!(true) {
            self.js(axe_source(), vec![]).await;
        }
        let result = self
            .js_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'], rules: { 'label-content-name-mismatch': { enabled: true } } })
                   .then(r => done(r.violations.map(v => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map(n => n.target.join(' ') + (n.failureSummary ? ' [' + n.failureSummary.replace(/\\s+/g, ' ') + ']' : '')).join('; ')}`)))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await;
        result
            .as_array()
            .expect("axe result")
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Saves a screenshot of the viewport under `target/screenshots/`.
    pub async fn shot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(name), png).expect("save screenshot");
    }

    /// Opens a second window and switches to it; returns (first, second) handles.
    pub async fn second_window(
        &self,
    ) -> (fantoccini::wd::WindowHandle, fantoccini::wd::WindowHandle) {
        let first = self.client.window().await.expect("window");
        let second = self
            .client
            .new_window(false)
            .await
            .expect("new window")
            .handle;
        self.client
            .switch_to_window(second.clone())
            .await
            .expect("switch");
        (first, second)
    }

    pub async fn switch(&self, w: &fantoccini::wd::WindowHandle) {
        self.client
            .switch_to_window(w.clone())
            .await
            .expect("switch window");
    }
}

/// The axe-core script, read once. Missing axe-core fails the test: it is part of the suite.
fn axe_source() -> &'static str {
    static AXE_JS: OnceLock<String> = OnceLock::new();
    AXE_JS.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(AXE);
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is missing ({}: {e}); install it with `npm ci --prefix web-tests` (.ci/run does)",
                path.display()
            )
        })
    })
}

/// Lines shown in the attendee page's main pane, as [seq, text, lang].
pub const MAIN_LINES: &str = "return [...document.querySelectorAll('#pane-main .log .line')].map(l => [l.dataset.seq, l.textContent, l.lang])";
/// The partial shown in the main pane ("" when hidden).
pub const MAIN_PARTIAL: &str =
    "const p = document.querySelector('#pane-main .partial'); return p.hidden ? '' : p.textContent";
