//! How pages and files are served over HTTP: gzip by `Accept-Encoding`, validators and cache
//! headers, versioned asset URLs, security headers, QR codes and the admin API.

mod common;

use std::io::Read;

use common::*;
use reqwest::header;
use reqwest::StatusCode;
use serde_json::Value;

fn client() -> reqwest::Client {
    // No automatic decompression: the tests look at the bytes on the wire.
    reqwest::Client::new()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .expect("valid gzip");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_compressed_revalidated_and_locked_down() {
    let s = TestServer::start().await;
    let c = client();
    for path in ["/", "/e/conf", "/booth/conf", "/admin"] {
        let r = c
            .get(s.http(path))
            .header(header::ACCEPT_ENCODING, "gzip, br")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert_eq!(h[header::CONTENT_ENCODING], "gzip", "{path}");
        assert_eq!(h[header::VARY], "Accept-Encoding", "{path}");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache", "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"));
        let html = gunzip(&r.bytes().await.unwrap());
        assert!(html.starts_with("<!doctype html>"), "{path}");
        // No inline script or style anywhere: the CSP would block it.
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{path}"
        );
        // Revalidation: the same ETag gives 304 with no body.
        let etag = h[header::ETAG].to_str().unwrap().to_string();
        let r = c
            .get(s.http(path))
            .header(header::ACCEPT_ENCODING, "gzip")
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    // Without Accept-Encoding: identity, and a different validator.
    let r = c.get(s.http("/e/conf")).send().await.unwrap();
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("role=\"log\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_versioned_and_cached_for_a_year() {
    let s = TestServer::start().await;
    let c = client();
    let html = c
        .get(s.http("/e/conf"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("/static/").expect("asset link") + "/static/".len();
    let version = html[start..].split('/').next().unwrap().to_string();
    assert_eq!(version, babelcast::web::assets::version());
    for file in ["app.css", "attendee.js", "common.js", "feed.js"] {
        let r = c
            .get(s.http(&format!("/static/{version}/{file}")))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{file}");
        assert_eq!(
            r.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        // The unversioned URL is revalidated instead.
        let r = c
            .get(s.http(&format!("/static/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    }
    // A stale version is served, but not pinned in caches.
    let r = c
        .get(s.http("/static/000000000000/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    // Only files of web/ are served.
    for path in [
        "/static/../Cargo.toml",
        "/static/nope.js",
        "/static/x/%2e%2e%2fCargo.toml",
    ] {
        let r = c.get(s.http(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The attendee page and its modules stay small for weak connections.
    let mut total = 0;
    for file in [
        "attendee.html",
        "app.css",
        "attendee.js",
        "common.js",
        "feed.js",
    ] {
        let r = c
            .get(s.http(&format!("/static/{file}")))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        total += r.bytes().await.unwrap().len();
    }
    assert!(total < 20_000, "attendee page is {total} bytes gzipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_codes_point_at_the_public_url() {
    let s = TestServer::start_with(|c| {
        c.server.public_url = Some("https://captions.example.org/".into());
    })
    .await;
    let c = client();
    let r = c
        .get(s.http("/v1/events/conf/qr.svg?channel=zh"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "image/svg+xml");
    let svg = r.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    let event = c
        .get(s.http("/v1/events/conf/qr.svg"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(svg, event, "channel and event codes differ");
    for path in [
        "/v1/events/nope/qr.svg",
        "/v1/events/conf/qr.svg?channel=nope",
    ] {
        let r = c.get(s.http(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        babelcast::web::qr::attendee_url("https://captions.example.org", "conf", Some("zh")),
        "https://captions.example.org/e/conf?channel=zh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_channels_need_the_admin_token() {
    let s = TestServer::start().await;
    let c = client();
    let url = s.http("/v1/admin/channels");
    for auth in [None, Some("Bearer wrong"), Some("Bearer token-en-secret")] {
        let mut req = c.get(&url);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    }
    let _listener = s.listen("en", None).await;
    let mut en = s.publish("en").await;
    en.final_line("Welcome, everyone.", Some("e1")).await;
    let mut floor = s.publish("floor").await;
    floor.final_line("Welcome.", Some("f1")).await;
    let v: Value = c
        .get(&url)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chan = |id: &str| {
        v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    let en = chan("en");
    assert_eq!(en["on_air"], true);
    assert_eq!(en["publishers"], 1);
    assert_eq!(en["listeners"], 1);
    assert_eq!(en["lines_per_minute"], 1);
    assert!(en["last_line_age_ms"].as_i64().unwrap() < 60_000);
    assert_eq!(en["alerts"], serde_json::json!([]));
    // zh interprets the floor, which is live, and has said nothing.
    let zh = chan("zh");
    assert_eq!(zh["last_line_age_ms"], Value::Null);
    assert_eq!(zh["alerts"][0]["kind"], "silent_booth");
    // fr relays from en, which is live too.
    assert_eq!(chan("fr")["alerts"][0]["kind"], "silent_booth");
    assert_eq!(chan("floor")["alerts"], serde_json::json!([]));
}
