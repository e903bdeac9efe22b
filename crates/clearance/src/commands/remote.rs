//! Talking to a running gateway: the operator commands (`kill`, `status`,
//! `promote`, `signoff`, `investigate`) all send one request and print the
//! answer or the refusal.
#![expect(
    clippy::indexing_slicing,
    reason = "serde_json::Value indexed by a key returns Null when it is absent; it never panics"
)]

use anyhow::Context as _;
use reqwest::Method;
use serde_json::Value;

use crate::{cli::Remote, exit::Exit};

/// Sends one request; `(status, body)` with the body parsed when it is JSON.
pub async fn call(
    remote: &Remote,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let base = remote.server.trim_end_matches('/');
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(&remote.token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, body))
}

/// Prints a refusal the way every operator command does, and its exit
/// code: 1 when the gateway refused (4xx), 2 when it failed (5xx).
pub fn refused(status: u16, body: &Value) -> Exit {
    let message = body["error"]["message"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned);
    if status >= 500 {
        eprintln!("the gateway failed ({status}): {message}");
        return Exit::Trouble;
    }
    eprintln!("refused ({status}): {message}");
    Exit::Failed
}
