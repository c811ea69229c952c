//! The attendee page in the attendee's own language, in a real headless Chromium
//! (tests/common/browser.rs): every string table complete, every control and message in the
//! channel's language (Arabic right to left), else the browser's, else English.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::*;
use common::*;
use serde_json::{json, Value};

/// Languages with a table, their channel in the test event, and a caption in each.
const LANGUAGES: &[(&str, &str)] = &[
    ("en", "Good morning, and welcome to the conference."),
    ("zh", "早上好，欢迎各位来到会场。"),
    ("ar", "صباح الخير، ومرحبا بكم في المؤتمر."),
    ("fr", "Bonjour à toutes et à tous, et bienvenue."),
    ("es", "Buenos días y bienvenidos a la conferencia."),
    ("ru", "Доброе утро и добро пожаловать на конференцию."),
    ("de", "Guten Morgen und willkommen zur Konferenz."),
    ("ja", "おはようございます。会議へようこそ。"),
    ("ko", "안녕하세요. 회의에 오신 것을 환영합니다."),
    ("pt", "Bom dia e bem-vindos à conferência."),
];

/// The test event plus a channel per language above (and Italian, which has no table).
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        let template = c.events[0].channels[1].clone();
        for lang in ["es", "ar", "ru", "de", "ja", "ko", "pt", "it"] {
            let mut ch = template.clone();
            ch.id = toml::Spanned::new(0..0, lang.to_string());
            ch.lang = toml::Spanned::new(0..0, lang.to_string());
            ch.label = String::new();
            ch.publish_tokens = vec![token(lang)];
            c.events[0].channels.push(ch);
        }
    })
    .await
}

/// Loads every table in the page (as the page does) and checks each against English.
const CHECK_TABLES: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const { LANGS } = await import('/static/i18n.js');
  const en = (await import('/static/i18n/en.js')).default;
  const own = Object.keys(en).filter((k) => !/^(booth|admin|index|display)\./.test(k));
  const holes = (s) => (s.match(/\{\w+\}/g) || []).sort().join();
  const report = {};
  for (const lang of LANGS) {
    const t = (await import(`/static/i18n/${lang}.js`)).default;
    const problems = [];
    for (const k of own) {
      if (typeof t[k] !== 'string' || !t[k].trim()) problems.push(`missing ${k}`);
      else if (holes(t[k]) !== holes(en[k])) problems.push(`placeholders of ${k}`);
    }
    for (const k of Object.keys(t)) if (!(k in en)) problems.push(`unknown ${k}`);
    const translated = own.filter((k) => t[k] !== en[k]).length / own.length;
    report[lang] = { problems, translated: lang === 'en' || translated > 0.75 };
  }
  return report;
})().then(done, (e) => done(String(e)));
"#;

/// What the page shows in words, against the table of `lang`: every `data-i18n` element,
/// every translated attribute, and the words the page sets itself.
const CHECK_PAGE: &str = r#"
const done = arguments[arguments.length - 1];
const lang = arguments[0];
(async () => {
  const t = (await import(`/static/i18n/${lang}.js`)).default;
  const wrong = [];
  for (const e of document.querySelectorAll('[data-i18n]')) {
    if (e.textContent !== t[e.dataset.i18n]) wrong.push(`${e.dataset.i18n}: ${e.textContent}`);
  }
  for (const e of document.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of e.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':');
      if (e.getAttribute(attr) !== t[key]) wrong.push(`${attr}=${e.getAttribute(attr)}`);
    }
  }
  const conn = document.querySelector('#conn .conn-text').textContent;
  if (conn !== t['conn.live']) wrong.push(`badge: ${conn}`);
  const jump = document.querySelector('#pane-main .jump').textContent;
  if (jump !== t['jump']) wrong.push(`jump: ${jump}`);
  const wake = document.getElementById('wake').textContent;
  if (![t['wake.on'], t['wake.unsupported'], t['wake.refused']].includes(wake)) wrong.push(`wake: ${wake}`);
  const root = document.documentElement;
  return { lang: root.lang, dir: root.dir, wrong };
})().then(done, (e) => done(String(e)));
"#;

/// Issue 14, item 5: one table per language, all complete; each language's channel shows
/// the page in that language (Arabic right to left); screenshots of three of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attendee_page_speaks_the_channels_language() {
    let s = server().await;
    for (lang, text) in LANGUAGES {
        let mut p = s.publish(lang).await;
        p.final_line(text, Some("w1")).await;
    }
    let b = &Browser::start().await;
    b.goto(&s.http("/e/conf?channel=en")).await;
    b.wait_live("#conn").await;
    let tables = b.js_async(CHECK_TABLES, vec![]).await;
    for (lang, _) in LANGUAGES {
        assert_eq!(
            tables[lang],
            json!({"problems": [], "translated": true}),
            "table {lang}"
        );
    }
    b.viewport(360, 640).await;
    for (lang, text) in LANGUAGES {
        b.goto(&s.http(&format!("/e/conf?channel={lang}"))).await;
        b.wait_eq(
            "the page in the channel's language",
            "return document.documentElement.lang",
            json!(lang),
            PAGE_TIMEOUT,
        )
        .await;
        b.wait_live("#conn").await;
        b.wait_eq(
            "caption",
            "const l = document.querySelector('#pane-main .line'); return l && l.textContent",
            json!(text),
            PAGE_TIMEOUT,
        )
        .await;
        let page = b.js_async(CHECK_PAGE, vec![json!(lang)]).await;
        let dir = if *lang == "ar" { "rtl" } else { "ltr" };
        assert_eq!(
            page,
            json!({"lang": lang, "dir": dir, "wrong": []}),
            "page in {lang}"
        );
        if ["zh", "ar", "fr"].contains(lang) {
            // The settings sheet shows most of the page's words.
            b.click("#settings-btn").await;
            b.wait_true(
                "settings open",
                "return !document.getElementById('settings').hidden",
            )
            .await;
            b.shot(&format!("attendee-{lang}-360x640.png")).await;
        }
    }
    // Arabic is laid out right to left as a whole: the settings button sits on the left.
    b.goto(&s.http("/e/conf?channel=ar")).await;
    b.wait_eq(
        "rtl bar",
        "const r = document.getElementById('settings-btn').getBoundingClientRect(); return document.documentElement.dir === 'rtl' && r.left < innerWidth / 2",
        json!(true),
        PAGE_TIMEOUT,
    )
    .await;
}

/// Issue 14, item 5: a channel without a table (Italian) or a floor of mixed languages shows
/// the page in the browser's language, and English when the browser's has no table either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_table_the_browsers_language_then_english() {
    let s = server().await;
    let b = &Browser::start().await;
    b.goto(&s.http("/e/conf?channel=it")).await;
    b.wait_live("#conn").await;
    let ua = b.js("return navigator.userAgent", vec![]).await;
    for (accept, want, live) in [
        ("de-DE,de", "de", "Live"),
        ("pt-BR,pt", "pt", "Ao vivo"),
        ("it-IT,it", "en", "Live"),
    ] {
        b.cdp(
            "Emulation.setUserAgentOverride",
            json!({"userAgent": ua, "acceptLanguage": accept}),
        )
        .await;
        for channel in ["it", "floor"] {
            b.goto(&s.http(&format!("/e/conf?channel={channel}"))).await;
            b.wait_live("#conn").await;
            b.wait_eq(
                "browser's language",
                "return [document.documentElement.lang, document.querySelector('#conn .conn-text').textContent]",
                json!([want, live]),
                PAGE_TIMEOUT,
            )
            .await;
            let page = b.js_async(CHECK_PAGE, vec![json!(want)]).await;
            assert_eq!(
                page["wrong"],
                Value::Array(vec![]),
                "{channel} with {accept}"
            );
        }
    }
}
