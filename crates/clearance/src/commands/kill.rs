//! `clearance kill`: trip or reset a kill switch on the running gateway.

use anyhow::Context as _;
use serde_json::{Value, json};

use super::runtime::block_on;
use crate::{
    cli::{Remote, ScopeArg},
    exit::Exit,
};

pub fn run(
    scope: Option<ScopeArg>,
    target: Option<String>,
    reason: Option<String>,
    reset: Option<String>,
    remote: &Remote,
) -> anyhow::Result<Exit> {
    block_on(async {
        let client = reqwest::Client::new();
        let base = remote.server.trim_end_matches('/');
        let response = match reset {
            Some(id) => client.delete(format!("{base}/v1/kill-switches/{id}")).bearer_auth(&remote.token).send().await,
            None => {
                let scope = match scope {
                    Some(ScopeArg::Global) => "global",
                    Some(ScopeArg::Agent) => "agent",
                    Some(ScopeArg::Tool) => "tool",
                    Some(ScopeArg::Resource) | None => "resource",
                };
                let body = json!({ "scope": scope, "target": target, "reason": reason.unwrap_or_default() });
                client.post(format!("{base}/v1/kill-switches")).bearer_auth(&remote.token).json(&body).send().await
            }
        }
        .with_context(|| format!("cannot reach {base}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let pretty = serde_json::from_str::<Value>(&text).map_or(text, |v| {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        });
        if status.is_success() {
            if !pretty.is_empty() {
                println!("{pretty}");
            }
            eprintln!(
                "{}",
                if status.as_u16() == 204 {
                    "kill switch reset"
                } else {
                    "kill switch tripped"
                }
            );
            Ok(Exit::Ok)
        } else {
            eprintln!("refused ({status}): {pretty}");
            Ok(Exit::Failed)
        }
    })
}
