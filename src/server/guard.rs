//! Guards every HTTP request passes: the browser `Origin` allowlist for publishing and admin,
//! attendee access codes, the request timeout, JSON answers for over-size bodies, `nosniff` on
//! every response, and a debug access log that never shows query strings (they carry publish
//! tokens and access codes).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{AppState, ConnInfo};
use crate::config::{parse_origin, Origin};
use crate::metrics::Refused;
use crate::protocol::ErrorCode;

/// The header an attendee page may use instead of `?code=`.
pub const ACCESS_CODE_HEADER: &str = "x-access-code";

/// Whether a request with this `Origin` may use a browser-guarded endpoint: no `Origin` (not a
/// browser), the origin of `server.public_url`, one listed in `server.allowed_origins`, or the
/// address the connection reached spelled as an IP literal (`http://192.168.1.10:8080`, and
/// `localhost` on loopback), for pages opened by address on a LAN without a public URL.
///
/// Never the request's own `Host`: a DNS-rebinding page (`http://evil.example:8080`, its name
/// pointed at this server) sends a matching `Host` and `Origin`, but its origin is a name that
/// is not ours, and an IP literal is only ever the origin of pages this server served.
pub fn origin_allowed(
    headers: &HeaderMap,
    allowed: &[String],
    public_url: &str,
    reached: Option<(SocketAddr, bool)>,
) -> bool {
    let Some(value) = headers.get(header::ORIGIN) else {
        return true;
    };
    if allowed.iter().any(|a| a == "*") {
        return true;
    }
    let Some(origin) = value.to_str().ok().and_then(parse_origin) else {
        return false; // "null" (sandboxed frames, file://) and garbage
    };
    parse_origin(public_url).is_some_and(|p| p == origin)
        || allowed
            .iter()
            .filter_map(|a| parse_origin(a))
            .any(|a| a == origin)
        || reached.is_some_and(|(addr, tls)| is_address_origin(&origin, addr, tls))
}

/// Whether `origin` is the address a connection reached, as an IP literal (or `localhost` for a
/// loopback address), with the connection's scheme and port.
fn is_address_origin(origin: &Origin, addr: SocketAddr, tls: bool) -> bool {
    let scheme = if tls { "https" } else { "http" };
    if origin.scheme != scheme || origin.port != addr.port() {
        return false;
    }
    let host = origin.host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip == addr.ip() || ip.to_canonical() == addr.ip().to_canonical(),
        Err(_) => host == "localhost" && addr.ip().is_loopback(),
    }
}

/// Whether the request reaches an endpoint only trusted pages may use from a browser:
/// publish sockets, the admin API, and every request that changes something.
fn needs_origin_check(method: &Method, path: &str) -> bool {
    path.starts_with("/v1/admin")
        || path.ends_with("/publish")
        || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware every request passes (see the module doc).
pub async fn layer(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // The path only: query strings carry tokens and access codes.
    let path = req.uri().path().to_owned();
    let metrics = &app.hub.metrics;
    let max_body = app.hub.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut response = if declared.is_some_and(|n| n > max_body as u64) {
        // Refused from the header alone: the body is never read.
        metrics.refuse(Refused::TooBig);
        too_large(max_body)
    } else if needs_origin_check(&method, &path)
        && !origin_allowed(
            req.headers(),
            &app.allowed_origins,
            &app.public_url,
            req.extensions()
                .get::<ConnInfo>()
                .and_then(|c| Some((c.local?, c.tls))),
        )
    {
        metrics.refuse(Refused::Origin);
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::OriginNotAllowed,
            "this page's origin may not publish or administer here (server.allowed_origins)",
        )
        .into_response()
    } else {
        match tokio::time::timeout(app.hub.limits.request_timeout(), next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                metrics.refuse(Refused::Timeout);
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request took longer than {} s",
                        app.hub.limits.request_timeout().as_secs()
                    ),
                )
                .into_response()
            }
        }
    };
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json(response.headers()) {
        // axum's body limit answered in plain text; say it in the protocol's shape.
        metrics.refuse(Refused::TooBig);
        response = too_large(max_body);
    }
    response
        .headers_mut()
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    tracing::debug!(
        target: "babelcast::access",
        %method,
        path = %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

fn too_large(max: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BodyTooLarge,
        format!("body is larger than {max} bytes"),
    )
    .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// Answers 401/403 unless the request may read the event as an attendee: the event has no
/// access code, or the request carries it (`?code=` or `X-Access-Code`), or it carries the
/// admin token or a publish token of `channel`.
pub fn attendee(
    app: &AppState,
    event: &str,
    channel: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(), ApiError> {
    let hub = &app.hub;
    if !hub.needs_access_code(event) {
        return Ok(());
    }
    let code = q.get("code").map(String::as_str).or_else(|| {
        headers
            .get(ACCESS_CODE_HEADER)
            .and_then(|v| v.to_str().ok())
    });
    if code.is_some_and(|c| hub.may_attend(event, Some(c))) {
        return Ok(());
    }
    let token = crate::secret::bearer(headers).or_else(|| q.get("token").map(String::as_str));
    if token.is_some_and(|t| hub.is_admin(t) || hub.may_publish(event, channel, t)) {
        return Ok(());
    }
    hub.metrics.refuse(Refused::AccessCode);
    Err(match code {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::AccessCodeRequired,
            "this event needs its access code: add ?code=… from the event's link or QR code",
        ),
        Some(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::WrongAccessCode,
            "that access code does not open this event",
        ),
    })
}

/// Answers 401/403 unless the request may read the event's transcripts: anyone once the
/// organiser published them; for an archived event, only the admin; otherwise as an attendee
/// ([`attendee`]).
pub fn transcript_reader(
    app: &AppState,
    event: &str,
    channel: &str,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(), ApiError> {
    let Some(ev) = app.hub.event(event) else {
        return Ok(()); // the route answers 404
    };
    if ev.def.transcript_public {
        return Ok(());
    }
    if ev.signal.state() == crate::protocol::EventState::Archived {
        let token = crate::secret::bearer(headers).or_else(|| q.get("token").map(String::as_str));
        if token.is_some_and(|t| app.hub.is_admin(t)) {
            return Ok(());
        }
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::NotAllowed,
            "this event is archived and its transcript is private",
        ));
    }
    attendee(app, event, channel, headers, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins_parse_and_normalise() {
        let o = parse_origin("HTTPS://Example.org").unwrap();
        assert_eq!(
            (o.scheme.as_str(), o.host.as_str(), o.port),
            ("https", "example.org", 443)
        );
        assert_eq!(parse_origin("http://h:8080/").unwrap().port, 8080);
        for bad in [
            "null",
            "example.org",
            "https://e.org/path",
            "https://u@e.org",
            "ftp://e.org",
            "",
        ] {
            assert!(parse_origin(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn origin_rules() {
        let allowed = vec!["https://booth.example.org".to_string()];
        let pub_url = "https://captions.example.org";
        let lan: SocketAddr = "192.168.1.10:8080".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let ok = |origin: Option<&str>, host: &str, reached: Option<(SocketAddr, bool)>| {
            origin_allowed(&headers(origin, host), &allowed, pub_url, reached)
        };
        // Not a browser.
        assert!(ok(None, "x:1", None));
        // The public URL and the allowlist, whatever Host says.
        assert!(ok(
            Some("https://captions.example.org"),
            "10.0.0.1:8080",
            None
        ));
        assert!(ok(Some("https://booth.example.org"), "x:1", None));
        assert!(!ok(Some("http://captions.example.org"), "x:1", None));
        // DNS rebinding: the page's name now points at us, Host and Origin agree; refused.
        assert!(!ok(
            Some("http://evil.example:8080"),
            "evil.example:8080",
            Some((lan, false))
        ));
        assert!(!ok(Some("https://a.org"), "a.org", None));
        // The address the connection reached, as an IP literal, with its scheme and port.
        assert!(ok(
            Some("http://192.168.1.10:8080"),
            "192.168.1.10:8080",
            Some((lan, false))
        ));
        assert!(!ok(
            Some("https://192.168.1.10:8080"),
            "x",
            Some((lan, false))
        ));
        assert!(ok(
            Some("https://192.168.1.10:8080"),
            "x",
            Some((lan, true))
        ));
        assert!(!ok(
            Some("http://192.168.1.10:9999"),
            "x",
            Some((lan, false))
        ));
        assert!(!ok(
            Some("http://192.168.1.11:8080"),
            "x",
            Some((lan, false))
        ));
        assert!(ok(
            Some("http://localhost:8080"),
            "x",
            Some((loopback, false))
        ));
        assert!(!ok(Some("http://localhost:8080"), "x", Some((lan, false))));
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(ok(Some("http://[::1]:8080"), "x", Some((v6, false))));
        // Anything else.
        assert!(!ok(
            Some("https://evil.example"),
            "127.0.0.1:8080",
            Some((loopback, false))
        ));
        assert!(!ok(Some("null"), "127.0.0.1:8080", Some((loopback, false))));
        assert!(origin_allowed(
            &headers(Some("null"), "x:1"),
            &["*".to_string()],
            pub_url,
            None
        ));
    }

    #[test]
    fn which_requests_are_checked() {
        assert!(needs_origin_check(
            &Method::GET,
            "/v1/events/e/channels/c/publish"
        ));
        assert!(needs_origin_check(&Method::GET, "/v1/admin/channels"));
        assert!(needs_origin_check(
            &Method::POST,
            "/v1/events/e/channels/c/captions"
        ));
        assert!(!needs_origin_check(
            &Method::GET,
            "/v1/events/e/channels/c/listen"
        ));
        assert!(!needs_origin_check(&Method::GET, "/e/conf"));
    }
}
