//! The admin API from a test: JSON requests with the test admin token, answers as
//! `(status, body)`.

use serde_json::{json, Value};

use super::ADMIN_TOKEN;

/// An admin API client for the server at `base` (`http://127.0.0.1:PORT`).
#[derive(Clone)]
pub struct Admin {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Admin {
    pub fn new(base: &str) -> Admin {
        Admin::with_token(base, ADMIN_TOKEN)
    }

    pub fn with_token(base: &str, token: &str) -> Admin {
        Admin {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends `method path` with an optional JSON body; the status and the JSON answer
    /// (`Value::Null` for an empty one).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.expect("admin request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("admin answer");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None).await
    }

    /// Creates an event with channels `(id, lang, source)`; panics unless 201.
    pub async fn create_event(&self, id: &str, channels: &[(&str, &str, Option<&str>)]) -> Value {
        let chans: Vec<Value> = channels
            .iter()
            .map(|(c, lang, src)| json!({"id": c, "lang": lang, "source": src}))
            .collect();
        let (status, v) = self
            .post(
                "/v1/admin/events",
                json!({"id": id, "title": format!("Event {id}"), "channels": chans}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v
    }

    /// Issues a publish credential; its answer (with `token`), panics unless 201.
    pub async fn issue(&self, event: &str, channel: &str, name: &str) -> Value {
        let (status, v) = self
            .post(
                &format!("/v1/admin/events/{event}/channels/{channel}/credentials"),
                json!({ "name": name }),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v
    }
}

/// Asserts a refusal: its status and error code.
#[track_caller]
pub fn refused(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["type"], "error", "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}
