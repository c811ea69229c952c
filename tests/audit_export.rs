//! The audit log's export has every entry: the store returns at most `MAX_AUDIT_PAGE` (1000)
//! entries a read, a full page links to the next (`Link: <…>; rel="next"`), and the
//! dashboard's export (web/admin-audit.js) follows the links from the URL it starts with: the
//! file it makes in real headless Chromium is the whole log.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::admin::Admin;
use common::*;
use futures_util::future::join_all;
use serde_json::json;

/// The first URL of the dashboard's export (web/admin-audit.js `EXPORT_PAGE`).
const EXPORT: &str = "/v1/admin/audit?format=csv&limit=1000";
/// Event updates made: with the event's creation, over two full pages.
const CHANGES: usize = 2040;
/// Requests in flight while filling the log.
const PARALLEL: usize = 16;
/// The CSV's header line.
const HEADER: &str = "id,time_utc,actor,action,target,detail\r\n";

/// One page: its body and the next page's URL, if any.
async fn page(base: &str, url: &str) -> (String, Option<String>) {
    let res = reqwest::Client::new()
        .get(format!("{base}{url}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let next = res.headers().get("link").map(|l| {
        let l = l.to_str().unwrap();
        assert!(l.ends_with(">; rel=\"next\""), "{l}");
        l[1..l.find('>').unwrap()].to_string()
    });
    (res.text().await.unwrap(), next)
}

/// What the dashboard's export does: every page from [`EXPORT`], the header line once.
async fn export(base: &str) -> (String, usize) {
    let (mut csv, mut next) = page(base, EXPORT).await;
    let mut pages = 1;
    while let Some(url) = next {
        let (body, after) = page(base, &url).await;
        csv.push_str(body.strip_prefix(HEADER).expect("each page has the header"));
        next = after;
        pages += 1;
    }
    (csv, pages)
}

/// An event with [`CHANGES`] updates: `CHANGES + 1` audit entries.
async fn fill_log(admin: &Admin) {
    admin
        .create_event("summit", &[("floor", "auto", None)])
        .await;
    for batch in (0..CHANGES).collect::<Vec<_>>().chunks(PARALLEL) {
        let changes = batch.iter().map(|i| {
            let admin = admin.clone();
            async move {
                let title = format!("Summit, change {i}");
                let (status, v) = admin
                    .call(
                        "PATCH",
                        "/v1/admin/events/summit",
                        Some(json!({ "title": title })),
                    )
                    .await;
                assert_eq!(status, 200, "{v}");
            }
        });
        join_all(changes).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_export_has_every_entry_past_one_page() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    fill_log(&admin).await;
    let (csv, pages) = export(&s.http("")).await;
    assert_eq!(pages, 3, "{} entries in pages of 1000", CHANGES + 1);
    assert!(csv.starts_with(HEADER));
    let rows: Vec<&str> = csv[HEADER.len()..].split_terminator("\r\n").collect();
    assert_eq!(rows.len(), CHANGES + 1);
    // Newest first, each once, none missing: ids count down by one to the event's creation.
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] - 1),
        "ids not contiguous"
    );
    assert!(
        rows.last().unwrap().contains(",event.create,summit,"),
        "{}",
        rows.last().unwrap()
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains(",event.update,summit,"))
            .count(),
        CHANGES
    );
}

/// The dashboard's *Export CSV* button, in Chromium: the file it makes is the export above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_button_downloads_the_whole_log() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    fill_log(&admin).await;
    let b = &Browser::start().await;
    b.cdp("Page.setDownloadBehavior", json!({ "behavior": "deny" }))
        .await;
    b.goto(&s.http("/admin")).await;
    b.find("#token")
        .await
        .send_keys(ADMIN_TOKEN)
        .await
        .expect("type the token");
    b.click("#signin button[type=submit]").await;
    b.wait_true(
        "the organisers' section",
        "return !document.getElementById('organisers').hidden",
    )
    .await;
    // The file the button makes, kept as it is handed to the download link.
    b.js(
        "const make = URL.createObjectURL;
         URL.createObjectURL = (blob) => { window.__export = blob; return make.call(URL, blob); };",
        vec![],
    )
    .await;
    b.click("#audit-export").await;
    b.wait_eq(
        "the export",
        "return !!window.__export",
        json!(true),
        std::time::Duration::from_secs(30),
    )
    .await;
    let file = b
        .js_async(
            "const done = arguments[arguments.length - 1]; window.__export.text().then(done);",
            vec![],
        )
        .await;
    let (csv, _) = export(&s.http("")).await;
    let file = file.as_str().expect("the file's text");
    assert_eq!(file.len(), csv.len());
    assert!(
        file == csv,
        "the downloaded file differs from the whole log"
    );
}

/// The JSON log pages the same way; a page that ends the log exactly links to an empty one.
#[tokio::test]
async fn json_pages_link_to_the_next_until_the_last() {
    let s = TestServer::start().await;
    let admin = Admin::new(&s.http(""));
    for id in ["a", "b", "c", "d"] {
        admin.create_event(id, &[]).await;
    }
    let mut url = Some("/v1/admin/audit?limit=2".to_string());
    let mut seen = Vec::new();
    while let Some(u) = url {
        let (body, next) = page(&s.http(""), &u).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        for e in v["entries"].as_array().unwrap() {
            seen.push(e["target"].as_str().unwrap().to_string());
        }
        url = next;
    }
    assert_eq!(seen, ["d", "c", "b", "a"]);
}
