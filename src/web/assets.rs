//! The files of `web/`: embedded in the binary, prepared once (versioned asset URLs, gzip,
//! ETags) and served with cache validators, content negotiation and security headers.
//!
//! Caching policy:
//! - Pages (`/`, `/e/{event}`, ...) are `no-cache` with an `ETag`: a browser revalidates on
//!   every visit (one tiny 304 round trip), so a new build is picked up at once.
//! - In an embedded build, pages refer to CSS and JS under `/static/{version}/…`, where the
//!   version is a hash of every embedded file. Those URLs never change content, so they are
//!   cached for a year (`immutable`): a phone on weak Wi-Fi fetches them once per release and
//!   never revalidates. Module imports are relative (`./common.js`), so they resolve inside the
//!   same versioned directory without rewriting any JavaScript.
//! - `/static/{file}` (unversioned) and everything served from `--web-dir` are `no-cache`
//!   with an `ETag`, so development edits show on reload.

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::WebState;

/// One embedded file.
struct Asset {
    name: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset { name: $name, bytes: include_bytes!(concat!("../../web/", $name)) }),*]
    };
}

/// Every file in `web/`. A new file must be listed here to be served.
static ASSETS: &[Asset] = assets![
    "index.html",
    "attendee.html",
    "booth.html",
    "admin.html",
    "app.css",
    "common.js",
    "feed.js",
    "index.js",
    "attendee.js",
    "booth.js",
    "admin.js",
    "admin-manage.js",
    "admin-audit.js",
    "booth-lines.js",
    "booth-send.js",
    "booth-audio.js",
    "capture-worklet.js",
    "audio-player.js",
    "listen.js",
    "display.html",
    "display.css",
    "display.js",
    "transcript.html",
    "transcript.js",
    "i18n.js",
    // One table per language (web/i18n.js).
    "i18n/en.js",
    "i18n/zh.js",
    "i18n/ar.js",
    "i18n/fr.js",
    "i18n/es.js",
    "i18n/ru.js",
    "i18n/de.js",
    "i18n/ja.js",
    "i18n/ko.js",
    "i18n/pt.js",
    "icon.svg",
];

/// Content security policy for every page: no inline script or style, same-origin everything.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Long-lived cache for versioned asset URLs: their content never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Revalidate on every use (pages, unversioned assets, development).
const NO_CACHE: &str = "no-cache";
/// Files smaller than this are not worth compressing (headers cost more than they save).
const GZIP_MIN_BYTES: usize = 512;
/// The prefix rewritten in pages to point at the versioned asset directory.
const STATIC_PREFIX: &str = "\"/static/";

/// A file ready to serve: both encodings and their validators.
#[derive(Debug)]
pub struct Prepared {
    content_type: &'static str,
    identity: Bytes,
    /// Present only when gzip is smaller.
    gzip: Option<Bytes>,
    etag: String,
}

/// Every embedded file, prepared once.
#[derive(Debug)]
struct Bundle {
    version: String,
    files: Vec<(&'static str, Prepared)>,
}

static EMBEDDED: OnceLock<Bundle> = OnceLock::new();

fn embedded() -> &'static Bundle {
    EMBEDDED.get_or_init(|| {
        let mut all = Vec::new();
        for a in ASSETS {
            all.extend_from_slice(a.name.as_bytes());
            all.extend_from_slice(a.bytes);
        }
        let version = format!("{:012x}", fnv1a(&all) >> 16);
        let files = ASSETS
            .iter()
            .map(|a| {
                let bytes = if a.name.ends_with(".html") {
                    versioned_page(a.bytes, &version)
                } else {
                    a.bytes.to_vec()
                };
                (a.name, prepare(a.name, bytes))
            })
            .collect();
        Bundle { version, files }
    })
}

/// The build's asset version (the directory of immutable asset URLs).
pub fn version() -> &'static str {
    &embedded().version
}

/// Points a page's `"/static/x"` references at `"/static/{version}/x"`.
fn versioned_page(bytes: &[u8], version: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.replace(STATIC_PREFIX, &format!("{STATIC_PREFIX}{version}/"))
        .into_bytes()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    // Stable across builds of the same content, cheap, no extra dependency.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Compresses and tags one file.
fn prepare(name: &str, bytes: Vec<u8>) -> Prepared {
    let etag = format!("\"{:016x}\"", fnv1a(&bytes));
    let gzip = (bytes.len() >= GZIP_MIN_BYTES && !name.ends_with(".png"))
        .then(|| gzip(&bytes))
        .filter(|z| z.len() < bytes.len())
        .map(Bytes::from);
    Prepared {
        content_type: content_type(name),
        identity: Bytes::from(bytes),
        gzip,
        etag,
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = GzEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::best());
    z.write_all(bytes).expect("writing to memory");
    z.finish().expect("writing to memory")
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// How the request asks for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want<'a> {
    /// A page or an unversioned asset: revalidate every time.
    Fresh,
    /// An asset under `/static/{version}/`.
    Versioned(&'a str),
}

/// Serves the file `name` of `web/` (embedded, or from `--web-dir`).
pub async fn serve(app: &WebState, headers: &HeaderMap, name: &str, want: Want<'_>) -> Response {
    // Only names from the embedded table are served, so no path can escape `web/`.
    if !ASSETS.iter().any(|a| a.name == name) {
        return not_found();
    }
    match &app.web_dir {
        Some(dir) => match tokio::fs::read(dir.join(name)).await {
            // Development: read and compress on every request; no versioned URLs.
            Ok(bytes) => respond(headers, &prepare(name, bytes), NO_CACHE),
            Err(_) => not_found(),
        },
        None => {
            let bundle = embedded();
            let Some((_, file)) = bundle.files.iter().find(|(n, _)| *n == name) else {
                return not_found();
            };
            let cache = match want {
                Want::Versioned(v) if v == bundle.version => IMMUTABLE,
                // An old page asking for an old version gets today's file, not pinned.
                _ => NO_CACHE,
            };
            respond(headers, file, cache)
        }
    }
}

/// Whether the client accepts gzip (`Accept-Encoding`, honouring `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            if !(coding.eq_ignore_ascii_case("gzip") || coding == "*") {
                return false;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            q > 0.0
        })
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for GET).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// Adds the headers every page and file carries.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
}

/// A response for `file`, choosing the encoding and answering 304 when the client has it.
pub fn respond(headers: &HeaderMap, file: &Prepared, cache: &'static str) -> Response {
    let gz = file.gzip.as_ref().filter(|_| accepts_gzip(headers));
    let etag = match gz {
        // A different representation needs a different validator.
        Some(_) => format!("{}-gz\"", file.etag.trim_end_matches('"')),
        None => file.etag.clone(),
    };
    let not_modified = matches(headers, &etag);
    let body = match (not_modified, gz) {
        (true, _) => Body::empty(),
        (false, Some(z)) => Body::from(z.clone()),
        (false, None) => Body::from(file.identity.clone()),
    };
    let mut r = Response::new(body);
    if not_modified {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if gz.is_some() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    security_headers(h);
    r
}

/// A file made at run time (a QR code), served like an asset with a validator.
pub fn dynamic(headers: &HeaderMap, name: &str, bytes: Vec<u8>) -> Response {
    respond(headers, &prepare(name, bytes), NO_CACHE)
}

pub fn not_found() -> Response {
    let mut r = Response::new(Body::from("not found\n"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    security_headers(r.headers_mut());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn accept_encoding_honours_q_zero() {
        assert!(accepts_gzip(&h(&[(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&h(&[(header::ACCEPT_ENCODING, "br;q=1, *")])));
        assert!(!accepts_gzip(&h(&[(header::ACCEPT_ENCODING, "gzip;q=0")])));
        assert!(!accepts_gzip(&h(&[(header::ACCEPT_ENCODING, "identity")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn pages_point_at_the_versioned_directory() {
        let bundle = embedded();
        let (_, page) = bundle
            .files
            .iter()
            .find(|(n, _)| *n == "attendee.html")
            .unwrap();
        let text = std::str::from_utf8(&page.identity).unwrap();
        assert!(text.contains(&format!("\"/static/{}/app.css\"", bundle.version)));
        assert!(!text.contains("\"/static/app.css\""));
        assert!(page.gzip.as_ref().unwrap().len() < page.identity.len());
    }

    #[test]
    fn etag_differs_by_encoding_and_gives_304() {
        let file = prepare("x.js", "let a = 1;\n".repeat(100).into_bytes());
        let plain = respond(&HeaderMap::new(), &file, NO_CACHE);
        let zipped = respond(&h(&[(header::ACCEPT_ENCODING, "gzip")]), &file, NO_CACHE);
        let (e1, e2) = (
            plain.headers()[header::ETAG].to_str().unwrap().to_string(),
            zipped.headers()[header::ETAG].to_str().unwrap().to_string(),
        );
        assert_ne!(e1, e2);
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let again = respond(
            &h(&[
                (header::ACCEPT_ENCODING, "gzip"),
                (header::IF_NONE_MATCH, &e2),
            ]),
            &file,
            NO_CACHE,
        );
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}
