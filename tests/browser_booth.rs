//! The booth console in a real headless Chromium (tests/common/browser.rs): typing reaches
//! attendees, and the console reads as sentences on a phone (standby lines and input
//! methods: browser_booth_input.rs).

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::*;
use common::*;
use fantoccini::key::Key;
use serde_json::json;

/// Typing in the booth reaches the attendee page (partial, then the committed line); acks
/// mark the line stored; clicking a line corrects it; the source runs beside the input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booth_typing_reaches_attendees() {
    let b = &Browser::start().await;
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
    b.shot("booth-1024x768.png").await;
    b.client.close_window().await.expect("close booth");
    b.client.switch_to_window(attendee).await.expect("switch");
}

/// Issue 14, item 3: the booth reads as sentences and works on a phone. On a 360×640 screen
/// the interpreter's own lines stay in view; the caption box is the first stop of Tab; the
/// on-air badge is red for the one on air only (standby is shown as such, in words and on the
/// caption box); Alt+H hands over and a refused take is explained without protocol codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booth_speaks_in_sentences_and_fits_a_phone() {
    let s = TestServer::start().await;
    let b = &Browser::start().await;
    b.viewport(360, 640).await;
    let mut floor = s.publish("floor").await;
    floor
        .final_line("我们今天讨论中小企业的数字化转型。", Some("f1"))
        .await;
    b.booth_sign_in(&s.http(""), "en", "Ana").await;
    // The caption box is the first thing Tab reaches from the top of the page: Tab on past
    // the last control (focus leaves the page), then once more.
    let mut wrapped = false;
    for _ in 0..20 {
        b.press(Key::Tab).await;
        if b.js("return document.activeElement === document.body", vec![])
            .await
            == json!(true)
        {
            wrapped = true;
            break;
        }
    }
    assert!(wrapped, "Tab never left the page");
    b.press(Key::Tab).await;
    let first = b.js("return document.activeElement.id", vec![]).await;
    assert_eq!(first, json!("input"), "first Tab stop");
    for (i, text) in [
        "Today we discuss how small firms go digital.",
        "Our first speaker runs a family business of forty people in Chengdu.",
        "She started with a single online shop.",
        "Now half of her sales are abroad.",
    ]
    .iter()
    .enumerate()
    {
        b.booth_commit(text).await;
        b.wait_eq(
            "stored",
            &format!("return document.querySelectorAll('#lines .bline[data-state=stored]').length === {}", i + 1),
            json!(true),
            PAGE_TIMEOUT,
        )
        .await;
    }
    b.wait_eq(
        "on air, in red with readable text",
        "const o = document.getElementById('onair'); const cs = getComputedStyle(o); return [o.textContent, o.dataset.state, cs.backgroundColor, cs.color]",
        json!(["You are on air", "mine", "rgb(198, 40, 40)", "rgb(255, 255, 255)"]),
        PAGE_TIMEOUT,
    )
    .await;
    // The last line is on screen, the lines pane has room, and nothing scrolls sideways.
    let fit = b
        .js(
            "const lines = document.querySelectorAll('#lines .bline'); const r = lines[lines.length - 1].getBoundingClientRect();
             return [r.top >= 0 && r.bottom <= innerHeight && r.height > 0, document.getElementById('own-scroller').clientHeight >= 90, document.documentElement.scrollWidth <= innerWidth]",
            vec![],
        )
        .await;
    assert_eq!(fit, json!([true, true, true]), "booth at 360×640");
    b.shot("booth-360x640.png").await;
    // A partner asks; Alt+H hands over.
    let mut bo = s.publish_as("en", "Bo").await;
    bo.send_json(json!({"type": "handover_request"})).await;
    b.wait_eq(
        "hand over offered",
        "const a = document.getElementById('accept'); return a.hidden ? null : [a.textContent, a.getAttribute('aria-keyshortcuts')]",
        json!(["Hand over to Bo", "Alt+H"]),
        PAGE_TIMEOUT,
    )
    .await;
    b.find("#input")
        .await
        .send_keys(&format!("{}h{}", Key::Alt, Key::Null))
        .await
        .expect("Alt+H");
    loop {
        let v = bo.recv_type("booth").await;
        if v["on_air"]["name"] == "Bo" {
            break;
        }
    }
    b.wait_eq(
        "standby, not a red badge",
        "const o = document.getElementById('onair'); return [o.textContent, getComputedStyle(o).backgroundColor, document.getElementById('input-label').textContent, document.getElementById('booth-who').textContent]",
        json!([
            "Standby",
            "rgba(0, 0, 0, 0)",
            "Standby — what you commit here is kept, not sent",
            "Bo is on air; you are on standby."
        ]),
        PAGE_TIMEOUT,
    )
    .await;
    // Taking the channel from a partner who just spoke is refused, in words.
    b.find("#input")
        .await
        .send_keys(&format!("{}t{}", Key::Alt, Key::Null))
        .await
        .expect("Alt+T");
    b.wait_eq(
        "refusal explained",
        "const a = document.getElementById('alert'); return !a.hidden && a.textContent",
        json!("Bo is still interpreting, so you cannot take the channel yet. Ask to take over (Alt+A) and wait for the handover."),
        PAGE_TIMEOUT,
    )
    .await;
    b.shot("booth-360x640-standby.png").await;
}
