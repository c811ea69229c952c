//! The landing page, the dashboard and the hall screen in a real headless Chromium
//! (tests/common/browser.rs).

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::*;
use common::*;
use serde_json::json;

/// The dashboard shows every channel with counts and raises a silent-booth alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_channels_and_alerts() {
    let b = &Browser::start().await;
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
    b.shot("admin-1024x768.png").await;
}

/// The landing page lists events with live counts and loads a QR code per event and channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_lists_events_with_qr_codes() {
    let b = &Browser::start().await;
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
    b.shot("landing-1024x768.png").await;
}

/// The rows of the hall screen, top to bottom: [channel, lang, dir, [row texts]].
const HALL_ROWS: &str = "return [...document.querySelectorAll('.block')].map(b => [b.dataset.channel, b.lang, b.dir, [...b.querySelectorAll('.row')].map(r => r.textContent)])";

/// Issue 14, item 7: the hall screen and livestream overlay. Two languages stacked (中文 over
/// English), the last N lines of each with the line in progress rolling up, very large type
/// inside the title-safe area, no controls, on black, transparent or chroma green, all set in
/// the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hall_screen_stacks_two_languages_in_large_type() {
    let s = TestServer::start().await;
    let mut zh = s.publish("zh").await;
    for (i, text) in [
        "早上好，欢迎各位。",
        "今天我们讨论中小企业的数字化转型。",
        "第一位发言人来自成都。",
    ]
    .iter()
    .enumerate()
    {
        zh.final_line(text, Some(&format!("z{i}"))).await;
    }
    let mut en = s.publish("en").await;
    en.final_line("Our first speaker comes from Chengdu.", Some("e1"))
        .await;
    let b = &Browser::start().await;
    b.viewport(1280, 720).await;
    b.goto(&s.http("/e/conf/display?ch=zh,en&lines=2&bg=green"))
        .await;
    b.wait_eq(
        "two languages, the last two lines of each",
        HALL_ROWS,
        json!([
            [
                "zh",
                "zh",
                "ltr",
                [
                    "今天我们讨论中小企业的数字化转型。",
                    "第一位发言人来自成都。"
                ]
            ],
            ["en", "en", "ltr", ["Our first speaker comes from Chengdu."]]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
    // The line in progress is the last row, and rolls up when it is committed.
    en.send_json(json!({"type": "partial", "text": "She runs a family"}))
        .await;
    b.wait_eq(
        "partial as the last row",
        "return [...document.querySelectorAll('.block[data-channel=en] .row')].map(r => r.textContent)",
        json!(["Our first speaker comes from Chengdu.", "She runs a family"]),
        CAPTION_DEADLINE,
    )
    .await;
    en.final_line("She runs a family business.", Some("e2"))
        .await;
    en.final_line("It has forty people.", Some("e3")).await;
    b.wait_eq(
        "rolled up",
        "return [...document.querySelectorAll('.block[data-channel=en] .row')].map(r => r.textContent)",
        json!(["She runs a family business.", "It has forty people."]),
        CAPTION_DEADLINE,
    )
    .await;
    let look = b
        .js(
            "const W = innerWidth, H = innerHeight;
             const rows = [...document.querySelectorAll('.row')].map(r => r.getBoundingClientRect());
             const zh = document.querySelector('.block[data-channel=zh]').getBoundingClientRect();
             const en = document.querySelector('.block[data-channel=en]').getBoundingClientRect();
             return {
               background: getComputedStyle(document.body).backgroundColor,
               controls: document.querySelectorAll('a, button, input, select, textarea, [tabindex]').length,
               safe: rows.every(r => r.left >= 0.05 * W - 1 && r.right <= 0.95 * W + 1 && r.top >= 0.05 * H - 1 && r.bottom <= 0.95 * H + 1),
               stacked: zh.bottom <= en.top,
               large: parseFloat(getComputedStyle(document.querySelector('.block .row')).fontSize) >= 0.06 * H,
             }",
            vec![],
        )
        .await;
    assert_eq!(
        look,
        json!({"background": "rgb(0, 177, 64)", "controls": 0, "safe": true, "stacked": true, "large": true})
    );
    b.goto(&s.http("/e/conf/display?ch=zh,en&lines=3")).await;
    b.wait_true(
        "three lines of Chinese",
        "return document.querySelectorAll('.block[data-channel=zh] .row').length === 3",
    )
    .await;
    b.shot("display-zh-en-1280x720.png").await;
    // A browser source over video: nothing but the captions is painted.
    b.goto(&s.http("/e/conf/display?ch=en&bg=transparent&lines=1"))
        .await;
    b.wait_eq(
        "one line, transparent",
        "return [[...document.querySelectorAll('.row')].map(r => r.textContent), getComputedStyle(document.documentElement).backgroundColor, getComputedStyle(document.body).backgroundColor]",
        json!([["It has forty people."], "rgba(0, 0, 0, 0)", "rgba(0, 0, 0, 0)"]),
        PAGE_TIMEOUT,
    )
    .await;
    // A wrong channel in the URL is said plainly, on the screen.
    b.goto(&s.http("/e/conf/display?ch=zh,xx")).await;
    b.wait_eq(
        "unknown channel",
        "const p = document.getElementById('problem'); return !p.hidden && p.textContent",
        json!("There is no channel “xx” in “conf”: check ch= in the address."),
        PAGE_TIMEOUT,
    )
    .await;
}

/// Issue 14, item 8: bound to every interface without `server.public_url`, the links people
/// open or scan use this machine's network address, never 0.0.0.0: on the landing page (the
/// link written under each QR code, which encodes the same URL) and in the startup banner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_use_the_network_address_not_0_0_0_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = babelcast::Config::parse(&config_toml(dir.path()), std::path::Path::new("t.toml"))
        .expect("config");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind every interface");
    let port = listener.local_addr().unwrap().port();
    let server = babelcast::Server::start(listener, config, babelcast::Options::default())
        .await
        .expect("start");
    let lan = babelcast::server::lan::lan_address("0.0.0.0".parse().unwrap());
    let expected = match lan {
        Some(ip) => format!("http://{}", std::net::SocketAddr::new(ip, port)),
        None => format!("http://127.0.0.1:{port}"),
    };
    assert_eq!(server.public_url(), expected);
    let b = &Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{port}/")).await;
    b.wait_eq(
        "the event's link written out",
        "const a = document.querySelector('.typed-link .url'); return a && [a.textContent, a.getAttribute('href')]",
        json!([
            format!("{}/e/conf", expected.trim_start_matches("http://")),
            format!("{expected}/e/conf")
        ]),
        PAGE_TIMEOUT,
    )
    .await;
    if let Some(ip) = lan {
        assert!(!ip.is_unspecified() && !ip.is_loopback(), "{ip}");
        // An address of this machine (binding it needs no traffic).
        std::net::TcpListener::bind((ip, 0)).expect("the link's address is this machine's");
    }
    server.shutdown().await;
    // The banner of `babelcast serve --bind 0.0.0.0:0` says the same, and why.
    let mut options = BinOptions::new(dir.path());
    options.bind = "0.0.0.0:0".into();
    let mut bin = BinServer::spawn(options).await;
    let text = poll_until("the banner", || async {
        let out = bin.banner();
        out.contains("admin token").then_some(out)
    })
    .await;
    bin.kill9().await;
    let banner: Vec<&str> = text.lines().collect();
    assert!(
        !text.contains("0.0.0.0:") || text.contains("(bound to 0.0.0.0:"),
        "{text}"
    );
    let links: Vec<_> = banner.iter().filter(|l| l.contains("://")).collect();
    assert!(links.len() >= 5, "{text}");
    for l in links {
        assert!(!l.contains("://0.0.0.0"), "unusable link: {l}");
        if let Some(ip) = lan {
            assert!(l.contains(&format!("://{ip}:")), "{l}");
        }
    }
    if lan.is_some() {
        assert!(text.contains("this machine's network address"), "{text}");
    }
}

/// Issue 14, item 9: the dashboard on a 360 px phone: each channel a card with every count
/// in view and named, "on air" explained, and the silent-booth alert only where an interpreter
/// is expected (not on the English channel while the floor speaks English).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_fits_a_phone_and_alerts_only_where_interpreters_are_expected() {
    let s = TestServer::start().await;
    let _listener = s.listen("zh", None).await;
    let mut floor = s.publish("floor").await;
    floor
        .final_line(
            "Good morning everyone, and welcome to the conference on small businesses.",
            Some("f1"),
        )
        .await;
    floor
        .final_line(
            "Today we will talk about how small firms can go digital.",
            Some("f2"),
        )
        .await;
    let b = &Browser::start().await;
    b.viewport(360, 640).await;
    b.goto(&s.http("/admin")).await;
    b.find("#token")
        .await
        .send_keys(ADMIN_TOKEN)
        .await
        .expect("type");
    b.click("#signin button[type=submit]").await;
    b.wait_live("#conn").await;
    b.wait_eq(
        "alerts where an interpreter is expected",
        "return [...document.querySelectorAll('#rows tr')].map(r => [r.dataset.key, [...r.querySelectorAll('.badge')].map(x => x.className)])",
        json!([
            ["conf/floor", []],
            ["conf/en", []],
            ["conf/zh", ["badge silent_booth"]],
            ["conf/fr", []]
        ]),
        PAGE_TIMEOUT,
    )
    .await;
    b.wait_eq(
        "counts in view and named",
        "const td = document.querySelector('tr[data-key=\"conf/zh\"] .listeners'); const r = td.getBoundingClientRect();
         return [td.textContent, r.right <= innerWidth && r.left >= 0, getComputedStyle(td, '::before').content, document.documentElement.scrollWidth <= innerWidth]",
        json!(["1", true, "\"Listeners\"", true]),
        PAGE_TIMEOUT,
    )
    .await;
    let explained = b
        .js(
            "return [document.getElementById('totals').textContent, document.getElementById('explain').textContent.startsWith('On air: an interpreter')]",
            vec![],
        )
        .await;
    assert_eq!(
        explained,
        json!(["1 listening · 1 of 4 channels on air", true])
    );
    b.shot("admin-360x640.png").await;
}
