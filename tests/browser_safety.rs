//! Browser-facing safety: the Origin allowlist for publishing and admin, security headers on
//! every page, and static serving that no path can lead out of the web files.
mod common;
use std::path::Path;

use babelcast::{Config, Options, Server};
use common::raw::{self, metric};
use common::*;

const EVIL: &str = "https://evil.example";
const BOOTH: &str = "https://booth.example.org";

async fn with_allowlist() -> TestServer {
    TestServer::start_with(|c| c.server.allowed_origins = vec![BOOTH.into()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_sockets_refuse_foreign_origins() {
    let s = with_allowlist().await;
    let url = format!(
        "{}?token={}",
        s.ws(&TestServer::channel_path("en", "publish")),
        token("en")
    );
    // A page on another site holding a stolen token cannot publish from a browser.
    let (status, body) = raw::refusal(raw::ws(s.addr, &url, &[("origin", EVIL)]).await);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    let (status, _) = raw::refusal(raw::ws(s.addr, &url, &[("origin", "null")]).await);
    assert_eq!(status, 403);
    // Same origin, an allowed origin, and no Origin at all (caption software) may.
    let same = format!("http://{}", s.addr);
    for origin in [Some(same.as_str()), Some(BOOTH), None] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        raw::ws(s.addr, &url, &headers)
            .await
            .unwrap_or_else(|e| panic!("origin {origin:?} refused: {e}"));
    }
    // Listening is public: embedding captions on another site is a feature.
    let listen = s.ws(&TestServer::channel_path("en", "listen"));
    raw::ws(s.addr, &listen, &[("origin", EVIL)])
        .await
        .expect("listen from any origin");
    assert!(metric(s.addr, "babelcast_refusals_total{reason=\"origin\"}").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_publishing_and_admin_refuse_foreign_origins() {
    let s = with_allowlist().await;
    let client = reqwest::Client::new();
    let captions = s.http(&TestServer::channel_path("en", "captions"));
    let r = client
        .post(&captions)
        .header("origin", EVIL)
        .bearer_auth(token("en"))
        .body("Injected from another site.")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .get(s.http("/v1/admin/channels"))
        .header("origin", EVIL)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .get(s.http("/v1/admin/channels"))
        .header("origin", BOOTH)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(&captions)
        .bearer_auth(token("en"))
        .body("From caption software.")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Only the line from caption software was stored.
    let l = s.listen("en", None).await;
    assert_eq!(l.hello["seq"], 1);
}

/// DNS rebinding: a page at `http://evil.example:PORT` whose name the attacker re-points at
/// the server. Its requests carry `Host: evil.example:PORT` and the same `Origin`, so a check
/// against the request's own Host would pass; the server compares with `server.public_url`,
/// `server.allowed_origins` and the address the client reached instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_rebinding_page_cannot_publish_or_administer() {
    let s = TestServer::start_with(|c| {
        c.server.public_url = Some("https://captions.example.org".into());
        c.server.allowed_origins = vec![BOOTH.into()];
    })
    .await;
    let port = s.addr.port();
    let rebound = format!("evil.example:{port}");
    let evil = format!("http://{rebound}");
    let publish = format!(
        "ws://{rebound}{}?token={}",
        TestServer::channel_path("en", "publish"),
        token("en")
    );
    let headers = [("origin", evil.as_str())];
    let (status, body) = raw::refusal(raw::ws(s.addr, &publish, &headers).await);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    let post = |origin: &str, host: &str| {
        format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nAuthorization: Bearer {}\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nInjected.",
            TestServer::channel_path("en", "captions"),
            token("en")
        )
    };
    assert_eq!(raw::http(s.addr, &post(&evil, &rebound)).await.status, 403);
    let admin = format!(
        "GET /v1/admin/channels HTTP/1.1\r\nHost: {rebound}\r\nOrigin: {evil}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw::http(s.addr, &admin).await.status, 403);
    // The public URL, the allowlist and the address the client reached may.
    let reached = format!("http://{}", s.addr);
    let localhost = format!("http://localhost:{port}");
    for origin in ["https://captions.example.org", BOOTH, &reached, &localhost] {
        let headers = [("origin", origin)];
        let url = s.ws(&format!(
            "{}?token={}",
            TestServer::channel_path("en", "publish"),
            token("en")
        ));
        raw::ws(s.addr, &url, &headers)
            .await
            .unwrap_or_else(|e| panic!("origin {origin} refused: {e}"));
    }
    // Nothing the rebinding page sent was stored (the allowed sockets above, which come and
    // go, may leave a handover record, but no line).
    let txt = raw::get(
        s.addr,
        &TestServer::channel_path("en", "transcript?format=txt"),
    )
    .await;
    assert_eq!(txt.status, 200);
    assert!(!txt.body.contains("Injected"), "{}", txt.body);
    assert!(
        txt.body.lines().all(|l| l.starts_with("[handover:")),
        "{}",
        txt.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers_and_no_inline_script() {
    let s = TestServer::start().await;
    for path in ["/", "/e/conf", "/booth/conf", "/admin"] {
        let r = raw::get(s.addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        let csp = r.header("content-security-policy").expect("CSP");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        // Every script is a file (the CSP would block an inline one anyway).
        for tag in r.body.split("<script").skip(1) {
            let open = &tag[..tag.find('>').expect("script tag closes")];
            assert!(open.contains("src="), "{path}: inline <script{open}>");
        }
    }
    // API answers are never sniffed as something else either.
    for path in ["/v1/events", "/healthz", "/metrics", "/no/such/thing"] {
        let r = raw::get(s.addr, path).await;
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

/// Paths that try to climb out of the web files, raw (clients would normalise them).
const ESCAPES: &[&str] = &[
    "/static/../secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%252e%252e%252fsecret.txt",
    "/static/..%5csecret.txt",
    "/static/..\\secret.txt",
    "/static/....//secret.txt",
    "/static/v1/..%2fsecret.txt",
    "/static/x/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/static/%2fetc%2fpasswd",
    "/static//etc/passwd",
    "/static/secret.txt%00.css",
    "/static/app.css%00",
    "/static/%c0%ae%c0%ae%c0%afsecret.txt",
    "/static/..%c0%afsecret.txt",
    "/static/.%2e/secret.txt",
    "/static/%2e./secret.txt",
    "/static/%u002e%u002e/secret.txt",
    "/e/..%2f..%2fsecret.txt",
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/static/abc/def/../../../secret.txt",
    "/static/i18n/..%2f..%2fsecret.txt",
    "/static/i18n/%2e%2e%2fnot-listed.txt",
    "/static/x/i18n/..%2f..%2f..%2fsecret.txt",
    "/static/i18n/not-listed.txt",
];

/// Copies `from` into `to` (a directory of files and directories of files: web/, web/i18n/).
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir(to.join(entry.file_name())).unwrap();
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_escapes_the_web_files() {
    // A development server (--web-dir) is the case that reads the file system: put a secret
    // right beside its web directory.
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    std::fs::create_dir(&web).unwrap();
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("web"), &web);
    const SECRET: &str = "the-secret-file-content";
    std::fs::write(tmp.path().join("secret.txt"), SECRET).unwrap();
    std::fs::write(web.join("not-listed.txt"), SECRET).unwrap();
    std::fs::write(web.join("i18n/not-listed.txt"), SECRET).unwrap();
    let store = tmp.path().join("data");
    let config = Config::parse(&config_toml(&store), Path::new("t.toml")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::start(
        listener,
        config,
        Options {
            web_dir: Some(web.clone()),
        },
    )
    .await
    .unwrap();

    let mut paths: Vec<String> = ESCAPES.iter().map(|p| p.to_string()).collect();
    paths.push("/static/not-listed.txt".into());
    for v in ["", "0123abcd/"] {
        paths.push(format!("/static/{v}..%2f..%2f..%2f..%2fetc%2fpasswd"));
    }
    for path in &paths {
        let r = raw::get(addr, path).await;
        // (`/e/{anything}` is the attendee page for an event id; it serves that page.)
        assert!(
            matches!(r.status, 400 | 404) || path.starts_with("/e/"),
            "{path}: status {} {:?}",
            r.status,
            r.body
        );
        assert!(!r.body.contains(SECRET), "{path} served the secret");
        assert!(!r.body.contains("root:"), "{path} served /etc/passwd");
    }
    // The real files are still served.
    assert_eq!(raw::get(addr, "/static/app.css").await.status, 200);
    assert_eq!(raw::get(addr, "/static/i18n/zh.js").await.status, 200);
    server.shutdown().await;
}
