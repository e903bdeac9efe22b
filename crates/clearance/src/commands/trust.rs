//! `clearance status | promote | signoff | investigate`: earned trust from
//! an operator's terminal.
#![expect(
    clippy::indexing_slicing,
    reason = "serde_json::Value indexed by a key returns Null when it is absent; it never panics"
)]

use std::io::IsTerminal as _;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};

use super::{remote, runtime::block_on};
use crate::{cli::Remote, exit::Exit};

pub fn status(agent: Option<&str>, as_json: bool, remote: &Remote) -> anyhow::Result<Exit> {
    block_on(async {
        let path = agent.map_or_else(|| "/v1/agents".to_owned(), |id| format!("/v1/agents/{id}"));
        let (code, body) = remote::call(remote, Method::GET, &path, None).await?;
        if code != 200 {
            return Ok(remote::refused(code, &body));
        }
        let agents: Vec<Value> = match body.get("agents") {
            Some(Value::Array(list)) => list.clone(),
            _ => vec![body],
        };
        if as_json {
            println!("{}", serde_json::to_string_pretty(&agents)?);
            return Ok(Exit::Ok);
        }
        for agent in &agents {
            print!("{}", render(agent));
            if std::io::stdout().is_terminal() {
                draw_bars(agent);
            }
        }
        Ok(Exit::Ok)
    })
}

/// Where publishing the agent's latest phase change to GitOps stands.
fn publication(platform: &serde_json::Map<String, Value>) -> String {
    let branch = platform["branch"].as_str().unwrap_or("?");
    match platform["state"].as_str() {
        Some("published") => format!(
            "\n  gitops: published {branch} ({})",
            platform["commit"]
                .as_str()
                .map_or("", |c| c.get(..12).unwrap_or(c))
        ),
        Some(state) => format!(
            "\n  gitops: {} {branch} after {} attempt(s): {}",
            state.to_uppercase(),
            platform["attempts"],
            platform["last_error"].as_str().unwrap_or("")
        ),
        None => String::new(),
    }
}

/// One agent as text: a heading, then every criterion of the next gate
/// with a bar, its value, the threshold and whether it is met.
pub fn render(agent: &Value) -> String {
    let text = render_standing(agent) + &render_demotion(agent);
    match agent["platform"].as_object() {
        // The publication line goes right under the heading.
        Some(platform) => match text.split_once('\n') {
            Some((heading, rest)) => format!("{heading}{}\n{rest}", publication(platform)),
            None => text + &publication(platform),
        },
        None => text,
    }
}

fn render_standing(agent: &Value) -> String {
    let phase = agent["phase"].as_str().unwrap_or("?");
    let mut out = format!("{}  phase {}", agent["id"].as_str().unwrap_or("?"), phase);
    if agent["locked"] == true {
        out.push_str("  LOCKED (an investigation must be recorded)");
    }
    let gate = &agent["next_gate"];
    if gate.is_null() {
        out.push_str("  (autonomous: no further gate)\n\n");
        return out;
    }
    let verdict = if agent["eligible"] == true {
        "ELIGIBLE"
    } else {
        "not eligible"
    };
    out.push_str(&format!(
        "  → {}: {verdict}\n",
        gate["to"].as_str().unwrap_or("?")
    ));
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(["criterion", "progress", "value", "needs", "met"]);
    for criterion in gate["criteria"].as_array().into_iter().flatten() {
        table.add_row([
            criterion["name"].as_str().unwrap_or("?").to_owned(),
            bar(criterion),
            value(criterion),
            needs(criterion),
            if criterion["met"] == true {
                "yes".to_owned()
            } else {
                "NO".to_owned()
            },
        ]);
    }
    if let Some(promotion) = agent["open_promotion"].as_object() {
        let signed = promotion
            .get("signoffs")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let required = promotion
            .get("signoffs_required")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        table.add_row([
            "sign-offs".to_owned(),
            text_bar(signed as f64, required as f64),
            format!("{signed}"),
            format!("{required} operators"),
            if signed as u64 >= required {
                "yes".into()
            } else {
                "NO".into()
            },
        ]);
    }
    out.push_str(&table.to_string());
    out.push_str("\n\n");
    out
}

/// Each demotion rule's value beside its threshold; nothing in shadow,
/// which has no phase below it.
fn render_demotion(agent: &Value) -> String {
    let rules = agent["demotion_rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if rules.is_empty() || agent["phase"] == "shadow" {
        return String::new();
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(["demotion rule", "value", "demotes when", "samples", "now"]);
    for rule in &rules {
        let threshold = rule["threshold"].as_f64().unwrap_or(0.0) * 100.0;
        let side = if rule["demotes_when"] == "below" {
            "<"
        } else {
            ">"
        };
        let value = match (rule["rate"].as_f64(), rule["value"].as_f64()) {
            (Some(rate), Some(value)) if rule["statistic"] == "wilson95" => {
                format!("{:.1}% (bound {:.1}%)", rate * 100.0, value * 100.0)
            }
            (Some(rate), _) => format!("{:.1}%", rate * 100.0),
            _ => "no samples".to_owned(),
        };
        table.add_row([
            rule["rule"].as_str().unwrap_or("?").to_owned(),
            value,
            format!(
                "{side} {threshold:.1}% over {}",
                rule["window"].as_str().unwrap_or("?")
            ),
            rule["samples"].to_string(),
            if rule["breached"] == true {
                "DEMOTES".to_owned()
            } else {
                "ok".to_owned()
            },
        ]);
    }
    format!("{table}\n\n")
}

fn value(criterion: &Value) -> String {
    let Some(value) = criterion["value"].as_f64() else {
        return "no samples".into();
    };
    match criterion["comparison"].as_str() {
        Some("at_least" | "at_most") => format!("{value}"),
        _ => {
            let compared = criterion["compared"].as_f64().unwrap_or(value);
            if (compared - value).abs() > 1e-12 {
                format!("{:.1}% (bound {:.1}%)", value * 100.0, compared * 100.0)
            } else {
                format!("{:.1}%", value * 100.0)
            }
        }
    }
}

fn needs(criterion: &Value) -> String {
    let threshold = criterion["threshold"].as_f64().unwrap_or(0.0);
    match criterion["comparison"].as_str() {
        Some("at_least") => format!("≥ {threshold}"),
        Some("at_most") => format!("≤ {threshold}"),
        Some("above") => format!("> {:.1}%", threshold * 100.0),
        Some("below") => format!("< {:.1}%", threshold * 100.0),
        _ => threshold.to_string(),
    }
}

/// How far along a criterion is, as a fraction of its threshold.
fn fraction(criterion: &Value) -> (f64, f64) {
    let threshold = criterion["threshold"].as_f64().unwrap_or(0.0);
    let compared = criterion["compared"].as_f64().unwrap_or(0.0);
    match criterion["comparison"].as_str() {
        Some("at_least" | "above") => (compared.min(threshold), threshold),
        // For ceilings, progress is the room left: full while within.
        _ => (if criterion["met"] == true { 1.0 } else { 0.0 }, 1.0),
    }
}

fn bar(criterion: &Value) -> String {
    let (done, total) = fraction(criterion);
    text_bar(done, total)
}

fn text_bar(done: f64, total: f64) -> String {
    const WIDTH: usize = 20;
    let ratio = if total > 0.0 {
        (done / total).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let filled = (ratio * WIDTH as f64).round() as usize;
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(filled),
        "░".repeat(WIDTH - filled),
        ratio * 100.0
    )
}

/// On a terminal, the same criteria as live indicatif bars.
fn draw_bars(agent: &Value) {
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
    let style = ProgressStyle::with_template("  {prefix:<28} [{bar:30.green/white}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    for criterion in agent["next_gate"]["criteria"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (done, total) = fraction(criterion);
        let bar = bars.add(ProgressBar::new(1_000).with_style(style.clone()));
        bar.set_prefix(criterion["name"].as_str().unwrap_or("?").to_owned());
        bar.set_position(if total > 0.0 {
            ((done / total).clamp(0.0, 1.0) * 1_000.0) as u64
        } else {
            1_000
        });
        bar.finish_with_message(if criterion["met"] == true {
            "met"
        } else {
            "not met"
        });
    }
    println!();
}

pub fn promote(agent: &str, remote: &Remote) -> anyhow::Result<Exit> {
    post(
        remote,
        &format!("/v1/agents/{agent}/promotions"),
        &json!({}),
        "promotion opened; it needs operators' sign-offs (`clearance signoff`)",
    )
}

pub fn signoff(agent: &str, promotion: &str, remote: &Remote) -> anyhow::Result<Exit> {
    post(
        remote,
        &format!("/v1/agents/{agent}/promotions/{promotion}/signoffs"),
        &json!({}),
        "signed",
    )
}

pub fn investigate(agent: &str, findings: &str, remote: &Remote) -> anyhow::Result<Exit> {
    post(
        remote,
        &format!("/v1/agents/{agent}/investigations"),
        &json!({ "findings": findings }),
        "investigation recorded; the lock is lifted",
    )
}

fn post(remote: &Remote, path: &str, body: &Value, done: &str) -> anyhow::Result<Exit> {
    block_on(async {
        let (status, answer) = remote::call(remote, Method::POST, path, Some(body)).await?;
        if !(200..300).contains(&status) {
            return Ok(remote::refused(status, &answer));
        }
        println!("{}", serde_json::to_string_pretty(&answer)?);
        eprintln!("{done}");
        Ok(Exit::Ok)
    })
}
