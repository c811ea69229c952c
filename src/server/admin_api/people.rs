//! Credentials, admin tokens and the audit log: issue (the token shown once, with the
//! booth's URL and QR code), list with last use, revoke, rotate; the audit log as JSON or CSV.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use super::{actor, admin_with, json, AppState, Q};
use crate::hub::Credential;
use crate::organiser::Issued;
use crate::protocol::admin::{
    AuditBody, AuditListBody, CredentialBody, CredentialsBody, IssuedBody, NewCredential,
};
use crate::protocol::{ErrorCode, Refusal};
use crate::server::error::refusal_response;
use crate::store::audit::{AuditEntry, MAX_AUDIT_PAGE};

/// Audit entries a read returns unless `limit` says otherwise.
const AUDIT_PAGE: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/events/{e}/channels/{c}/credentials", post(issue))
        .route("/v1/admin/credentials", get(list_credentials))
        .route("/v1/admin/credentials/{id}", delete(revoke))
        .route("/v1/admin/credentials/{id}/rotate", post(rotate))
        .route("/v1/admin/tokens", get(list_tokens).post(issue_admin))
        .route("/v1/admin/tokens/{id}", delete(revoke))
        .route("/v1/admin/audit", get(audit))
}

fn body_of(c: &Credential) -> CredentialBody<'_> {
    CredentialBody {
        id: &c.id,
        name: &c.name,
        event: c.scope.as_ref().map(|s| s.0.as_str()),
        channel: c.scope.as_ref().map(|s| s.1.as_str()),
        created_ms: c.created_ms,
        created_by: &c.created_by,
        last_used_ms: c.last_used_ms(),
        revoked_ms: c.revoked_ms(),
    }
}

/// The answer to an issue or rotation: the token, the URLs with it, the booth's QR code.
fn issued(app: &AppState, r: Result<Issued, Refusal>) -> Response {
    let i = match r {
        Ok(i) => i,
        Err(r) => return refusal_response(&r),
    };
    let c = &i.credential;
    let base = &app.public_url;
    let (publish_url, booth_url) = match &c.scope {
        Some((e, ch)) => {
            let ws = base.replacen("http", "ws", 1);
            (
                Some(format!(
                    "{ws}/v1/events/{e}/channels/{ch}/publish?token={}",
                    i.token
                )),
                // The token after '#' never reaches a server, a proxy's log or a Referer.
                Some(format!("{base}/booth/{e}?channel={ch}#token={}", i.token)),
            )
        }
        None => (None, None),
    };
    let qr_svg = booth_url.as_deref().and_then(crate::web::qr::svg);
    let body = IssuedBody {
        id: &c.id,
        name: &c.name,
        event: c.scope.as_ref().map(|s| s.0.as_str()),
        channel: c.scope.as_ref().map(|s| s.1.as_str()),
        token: &i.token,
        publish_url,
        booth_url,
        qr_svg,
    };
    json(StatusCode::CREATED, &body)
}

async fn issue(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((e, c)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (who, req): (_, NewCredential) = match admin_with(&app, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    issued(&app, app.organiser.issue(who, e, c, req.name).await)
}

async fn issue_admin(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (who, req): (_, NewCredential) = match admin_with(&app, &headers, &body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    issued(&app, app.organiser.issue_admin(who, req.name).await)
}

/// Lists publish credentials (`admin`: admin tokens instead), of one event if `?event=`.
fn list(app: &AppState, q: &std::collections::HashMap<String, String>, admin: bool) -> Response {
    let all = app.hub.auth.all();
    let event = q.get("event");
    let credentials = all
        .iter()
        .filter(|c| c.scope.is_none() == admin)
        .filter(|c| event.is_none_or(|e| c.scope.as_ref().is_some_and(|(ev, _)| ev == e)))
        .map(|c| body_of(c))
        .collect();
    json(StatusCode::OK, &CredentialsBody { credentials })
}

async fn list_credentials(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    match actor(&app, &headers) {
        Ok(_) => list(&app, &q, false),
        Err(r) => r.into_response(),
    }
}

async fn list_tokens(State(app): State<AppState>, headers: HeaderMap, Query(q): Q) -> Response {
    match actor(&app, &headers) {
        Ok(_) => list(&app, &q, true),
        Err(r) => r.into_response(),
    }
}

async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = match actor(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    match app.organiser.revoke(who, id).await {
        Ok(c) => json(StatusCode::OK, &body_of(&c)),
        Err(r) => refusal_response(&r),
    }
}

async fn rotate(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = match actor(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    issued(&app, app.organiser.rotate(who, id).await)
}

/// One CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-`
/// or `@` is prefixed with `'` so a spreadsheet never runs it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The `Link` header to the page after `entries` (RFC 8288 `rel="next"`), when the page is
/// full: a client pages with it until a page comes without one (the dashboard's CSV export).
fn next_page(entries: &[AuditEntry], limit: usize, csv: bool) -> Option<String> {
    let last = entries.last().filter(|_| entries.len() >= limit)?;
    let format = if csv { "&format=csv" } else { "" };
    Some(format!(
        "</v1/admin/audit?before={}&limit={limit}{format}>; rel=\"next\"",
        last.id
    ))
}

/// `GET /v1/admin/audit[?before=ID][&limit=N][&format=csv]`: newest first; a full page links
/// to the next one (`Link: <…?before=…>; rel="next"`).
async fn audit(State(app): State<AppState>, headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = actor(&app, &headers) {
        return r.into_response();
    }
    let before = q.get("before").and_then(|v| v.parse().ok());
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(AUDIT_PAGE)
        .clamp(1, MAX_AUDIT_PAGE);
    let entries = match app.hub.store.audit(before, limit).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "reading the audit log failed");
            return refusal_response(&Refusal::new(
                ErrorCode::StorageUnavailable,
                "the audit log could not be read",
            ));
        }
    };
    let csv = q.get("format").is_some_and(|f| f == "csv");
    let next = next_page(&entries, limit, csv);
    let mut res = if csv {
        audit_csv(&entries)
    } else {
        audit_json(&entries)
    };
    if let Some(link) = next.and_then(|l| header::HeaderValue::try_from(l).ok()) {
        res.headers_mut().insert(header::LINK, link);
    }
    res
}

/// The entries as a CSV download, one header line.
fn audit_csv(entries: &[AuditEntry]) -> Response {
    let mut out = String::from("id,time_utc,actor,action,target,detail\r\n");
    for e in entries {
        let time = format!("{}Z", crate::formats::timestamp::format(e.ts));
        let fields = [
            e.id.to_string(),
            time,
            e.actor.clone(),
            e.action.clone(),
            e.target.clone(),
            e.detail.clone(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"babelcast-audit.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

/// The entries as JSON.
fn audit_json(entries: &[AuditEntry]) -> Response {
    let body = AuditListBody {
        entries: entries
            .iter()
            .map(|e| AuditBody {
                id: e.id,
                ts: e.ts,
                actor: &e.actor,
                action: &e.action,
                target: &e.target,
                detail: &e.detail,
            })
            .collect(),
    };
    json(StatusCode::OK, &body)
}
