//! Issue 15, acceptance: an organiser runs an event from the dashboard in a real headless
//! Chromium. Create an event and two channels, issue a credential to a named interpreter,
//! follow on a phone-sized attendee page (the new channel appears in its picker without a
//! reload), publish with the credential from the booth page and see the line live; revoke
//! it and see the booth disconnected with the reason; end the event and see the attendee
//! page say so; publish the transcript page and read it without any token.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::*;
use common::*;
use serde_json::json;

/// Types `text` into the field `css` (cleared first).
async fn fill(b: &Browser, css: &str, text: &str) {
    let e = b.find(css).await;
    e.clear().await.expect("clear");
    e.send_keys(text).await.expect("type");
}

/// Clicks a dashboard button that asks for a second press to confirm.
async fn click_confirmed(b: &Browser, css: &str) {
    b.click(css).await;
    b.wait_true(
        "armed",
        &format!("return document.querySelector({css:?}).textContent.includes('again')"),
    )
    .await;
    b.click(css).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organiser_runs_an_event_from_the_dashboard() {
    let b = &Browser::start().await;
    let s = TestServer::start().await;

    // The dashboard: sign in, create the event and its floor.
    let dashboard = b.client.window().await.expect("window");
    b.goto(&s.http("/admin")).await;
    fill(b, "#token", ADMIN_TOKEN).await;
    b.click("#signin button[type=submit]").await;
    b.find("#new-event").await;
    fill(b, "#new-event [name=id]", "summit").await;
    fill(b, "#new-event [name=title]", "Summit on small business").await;
    b.click("#new-event button[type=submit]").await;
    let card = "[data-event=summit]";
    b.find(&format!("{card} .add-channel")).await;
    fill(b, &format!("{card} .add-channel [name=id]"), "floor").await;
    fill(b, &format!("{card} .add-channel [name=lang]"), "auto").await;
    fill(b, &format!("{card} .add-channel [name=label]"), "Floor").await;
    b.click(&format!("{card} .add-channel button[type=submit]"))
        .await;
    b.find(&format!("{card} [data-channel=floor]")).await;
    let attendee_url = b
        .js(
            &format!("return document.querySelector('{card} a[href*=\"/e/summit\"]').href"),
            vec![],
        )
        .await;
    let attendee_url = attendee_url.as_str().expect("attendee link").to_string();
    assert_eq!(
        attendee_url,
        s.http("/e/summit"),
        "the link the event's QR code encodes"
    );

    // The attendee page on a phone, open before the second channel exists.
    let attendee = b.client.new_window(false).await.expect("window").handle;
    b.switch(&attendee).await;
    b.viewport(360, 640).await;
    b.goto(&attendee_url).await;
    b.wait_live("#conn").await;
    b.js("window.__sameLoad = true", vec![]).await;
    assert_eq!(
        b.js(
            "return [...document.querySelectorAll('#channel option')].map(o => o.value)",
            vec![]
        )
        .await,
        json!(["floor"])
    );

    // The dashboard adds the Spanish channel and issues the interpreter's credential.
    b.switch(&dashboard).await;
    fill(b, &format!("{card} .add-channel [name=id]"), "es").await;
    fill(b, &format!("{card} .add-channel [name=lang]"), "es").await;
    fill(b, &format!("{card} .add-channel [name=label]"), "Español").await;
    b.find(&format!("{card} .add-channel [name=source]"))
        .await
        .select_by_value("floor")
        .await
        .expect("source");
    b.click(&format!("{card} .add-channel button[type=submit]"))
        .await;
    let es = format!("{card} [data-channel=es]");
    b.find(&format!("{es} .issue [name=name]")).await;
    fill(
        b,
        &format!("{es} .issue [name=name]"),
        "Spanish booth, interpreter 1",
    )
    .await;
    b.click(&format!("{es} .issue button[type=submit]")).await;
    b.wait_true("the credential shown once", "const i = document.getElementById('issued'); return !i.hidden && !!i.querySelector('img') && !!i.querySelector('a.booth-link')").await;
    b.shot("organiser-credential-1024x768.png").await;
    let booth_url = b
        .js(
            "return document.querySelector('#issued a.booth-link').href",
            vec![],
        )
        .await;
    let booth_url = booth_url.as_str().unwrap().to_string();
    assert!(
        booth_url.contains("/booth/summit?channel=es#token=bcp_"),
        "{booth_url}"
    );

    // The phone's picker has the new channel, without a reload.
    b.switch(&attendee).await;
    b.wait_eq(
        "the new channel in the picker",
        "return [...document.querySelectorAll('#channel option')].map(o => [o.value, o.textContent])",
        json!([["floor", "Floor"], ["es", "Español"]]),
        PAGE_TIMEOUT,
    )
    .await;
    assert_eq!(
        b.js("return window.__sameLoad === true", vec![]).await,
        json!(true)
    );
    b.find("#channel")
        .await
        .select_by_value("es")
        .await
        .expect("pick es");
    b.wait_live("#conn").await;

    // The booth laptop opens the link: signed in as the interpreter, the token out of sight.
    let booth = b.client.new_window(false).await.expect("window").handle;
    b.switch(&booth).await;
    b.goto(&booth_url).await;
    b.wait_live("#conn").await;
    b.wait_true("signed in by name", "return document.getElementById('signed-as').textContent.includes('Spanish booth, interpreter 1')").await;
    assert_eq!(b.js("return location.hash", vec![]).await, json!(""));
    b.booth_commit("Buenos días a todos.").await;

    b.switch(&attendee).await;
    b.wait_eq(
        "the line live on the phone",
        "return [...document.querySelectorAll('#pane-main .log .line')].map(l => l.textContent)",
        json!(["Buenos días a todos."]),
        PAGE_TIMEOUT,
    )
    .await;

    // Revoked: the booth is disconnected, and says why.
    b.switch(&dashboard).await;
    click_confirmed(b, &format!("{es} [data-credential] button")).await;
    b.switch(&booth).await;
    b.wait_true(
        "the booth says it was revoked",
        "const e = document.getElementById('signin-error'); return !e.hidden && e.textContent.includes('revoked your credential') && document.getElementById('console').hidden",
    )
    .await;

    // Ended: the phone says so.
    b.switch(&dashboard).await;
    click_confirmed(b, &format!("{card} .lifecycle button:first-child")).await;
    b.wait_eq(
        "the dashboard shows it ended",
        &format!(
            "const e = document.querySelector('{card} .state-badge'); return e && e.dataset.state"
        ),
        json!("ended"),
        PAGE_TIMEOUT,
    )
    .await;
    b.switch(&attendee).await;
    b.wait_true(
        "the attendee page says it ended",
        // In the channel's language: the page speaks Spanish on the Spanish channel.
        "const s = document.getElementById('event-state'); return !s.hidden && s.dataset.state === 'ended' && s.textContent.includes('Este evento ha terminado')",
    )
    .await;

    // Published: the transcript page reads without any token.
    b.switch(&dashboard).await;
    b.find(&format!("{card} .publish-transcript"))
        .await
        .click()
        .await
        .expect("publish");
    b.wait_true(
        "published",
        &format!("return !!document.querySelector('{card} .publish-transcript:checked')"),
    )
    .await;
    b.assert_accessible("the dashboard with an event").await;
    b.shot("organiser-ended-1024x768.png").await;
    let reader = b.client.new_window(false).await.expect("window").handle;
    b.switch(&reader).await;
    b.goto(&s.http("/e/summit/transcript")).await;
    b.wait_eq(
        "the transcript",
        "return [...document.querySelectorAll('[data-channel=es] .tline')].map(p => p.textContent)",
        json!(["Buenos días a todos."]),
        PAGE_TIMEOUT,
    )
    .await;
    b.find("#search")
        .await
        .send_keys("días")
        .await
        .expect("search");
    b.wait_eq(
        "search",
        "return [document.getElementById('matches').textContent, document.querySelectorAll('.tline mark').length]",
        json!(["1 matching lines", 1]),
        PAGE_TIMEOUT,
    )
    .await;
    b.assert_accessible("the transcript page").await;
}
