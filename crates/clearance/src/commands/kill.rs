//! `clearance kill`: trip or reset a kill switch on the running gateway.

use reqwest::Method;
use serde_json::json;

use super::{remote, runtime::block_on};
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
        let (status, body) = match reset {
            Some(id) => {
                remote::call(
                    remote,
                    Method::DELETE,
                    &format!("/v1/kill-switches/{id}"),
                    None,
                )
                .await?
            }
            None => {
                let scope = match scope {
                    Some(ScopeArg::Global) => "global",
                    Some(ScopeArg::Agent) => "agent",
                    Some(ScopeArg::Tool) => "tool",
                    Some(ScopeArg::Resource) | None => "resource",
                };
                let body = json!({ "scope": scope, "target": target, "reason": reason.unwrap_or_default() });
                remote::call(remote, Method::POST, "/v1/kill-switches", Some(&body)).await?
            }
        };
        match status {
            204 => eprintln!("kill switch reset"),
            200..=299 => {
                println!("{}", serde_json::to_string_pretty(&body)?);
                eprintln!("kill switch tripped");
            }
            _ => return Ok(remote::refused(status, &body)),
        }
        Ok(Exit::Ok)
    })
}
