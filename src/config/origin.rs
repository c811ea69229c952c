//! Browser origins as `server.public_url` and `server.allowed_origins` name them.

/// An origin normalised to `scheme://host:port` (lower case, explicit port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Parses a browser origin (`https://example.org`, `http://host:8080`); `None` for anything
/// else (a path, a query, `null`, an unknown scheme).
pub fn parse_origin(s: &str) -> Option<Origin> {
    let uri: axum::http::Uri = s.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || !matches!(uri.path(), "" | "/") || uri.query().is_some()
    {
        return None;
    }
    let port = match authority.port_u16() {
        Some(p) => p,
        None => default_port(&scheme)?,
    };
    Some(Origin {
        host: authority.host().to_ascii_lowercase(),
        scheme,
        port,
    })
}
