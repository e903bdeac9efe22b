//! `clearance replay DECISION_ID` and `clearance what-if --bundle DIR`:
//! recorded decisions decided again, offline, straight from the database.
//! A replay with no `--bundle` runs the bundle that decided, from the files
//! its `bundle.activated` record kept; what-if runs a candidate over a
//! window and exits 1 when anything that was not allowed would be — so a
//! policy repository's CI can make a human look before it merges.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context as _;
use clap::Args;
use clearance_bundle::BundleDir;
use clearance_engine::{Bundle, duration::BundleDuration};
use clearance_service::replay::{self, ReplayError, Replayed, WhatIfFilter, WhatIfReport};
use clearance_store::{Location, Store};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use jiff::Timestamp;

use super::{runtime::block_on, stores::with_existing_store};
use crate::exit::Exit;

/// `clearance replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The decision's id (`dec-…`).
    pub decision_id: String,
    /// Decide it under this bundle instead of the one that decided it, and
    /// show the difference.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// The database (file path, sqlite:PATH or postgres://…).
    #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
    pub db: Location,
    /// Print the replay as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `clearance what-if`.
#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// The candidate bundle.
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Only decisions this recent (`7d`, `12h`, `30m`) or since this
    /// instant (RFC 3339); every recorded decision when absent.
    #[arg(long, value_name = "AGE|TIME")]
    pub since: Option<String>,
    /// Only this agent's decisions.
    #[arg(long)]
    pub agent: Option<String>,
    /// The database (file path, sqlite:PATH or postgres://…).
    #[arg(long, env = "CLEARANCE_DB", default_value = "clearance.db")]
    pub db: Location,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<Exit> {
    let bundle = args.bundle.as_deref().map(load).transpose()?;
    let replayed = block_on(async {
        with_existing_store!(args.db, |store| replay_in(
            &store,
            &args.decision_id,
            bundle.as_ref()
        )
        .await)
    })?;
    let replayed = match replayed {
        Ok(replayed) => replayed,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(Exit::Trouble);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&replayed)?);
    } else {
        print!("{}", replay_text(&replayed));
    }
    Ok(if replayed.changed() {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

async fn replay_in(
    store: &impl Store,
    id: &str,
    bundle: Option<&Bundle>,
) -> anyhow::Result<Result<Replayed, ReplayError>> {
    match replay::replay(store, id, bundle).await {
        Err(ReplayError::Store(error)) => Err(error).context("cannot read the ledger"),
        other => Ok(other),
    }
}

fn replay_text(r: &Replayed) -> String {
    let verdict = |v: &replay::Verdict| {
        format!(
            "{} ({}) under {}",
            v.outcome,
            v.reasons.join(", "),
            v.policy_revision
        )
    };
    let mut out = format!(
        "decision {} (record {}, {})\n  {} asks {} on {}\n  recorded: {}\n  replayed: {}\n",
        r.decision_id,
        r.seq,
        r.at,
        r.request.agent,
        r.request.action,
        r.request.resource.path(),
        verdict(&r.recorded),
        verdict(&r.replayed),
    );
    if r.changed() {
        out.push_str(&format!(
            "CHANGED: {} → {}\n",
            r.recorded.outcome, r.replayed.outcome
        ));
    } else {
        out.push_str("same outcome\n");
    }
    out
}

pub fn what_if(args: WhatIfArgs) -> anyhow::Result<Exit> {
    let candidate = Arc::new(load(&args.bundle)?);
    let filter = WhatIfFilter {
        since: args.since.as_deref().map(since).transpose()?,
        agent: args.agent.clone(),
    };
    let report = block_on(async {
        with_existing_store!(args.db, |store| what_if_in(&store, candidate, &filter)
            .await)
    })?;
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(Exit::Trouble);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", what_if_text(&report));
    }
    // A window where nothing could be decided again vouches for nothing:
    // a CI gate must not pass on it.
    let vouches_for_nothing = report.vouches_for_nothing();
    if vouches_for_nothing {
        eprintln!(
            "nothing in the window could be decided again ({} decision(s) recorded before records kept their facts): the candidate is not checked",
            report.decisions
        );
    }
    Ok(if report.widens() || vouches_for_nothing {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

async fn what_if_in(
    store: &impl Store,
    candidate: Arc<Bundle>,
    filter: &WhatIfFilter,
) -> anyhow::Result<Result<WhatIfReport, ReplayError>> {
    match replay::what_if(store, candidate, filter).await {
        Err(ReplayError::Store(error)) => Err(error).context("cannot read the ledger"),
        other => Ok(other),
    }
}

fn what_if_text(report: &WhatIfReport) -> String {
    let changed: u64 = report.transitions.iter().map(|t| t.count).sum();
    let mut out = format!(
        "{} decisions re-decided under {}: {} unchanged, {} changed",
        report.decisions, report.candidate_revision, report.unchanged, changed
    );
    if report.not_replayable > 0 {
        out.push_str(&format!(
            ", {} not replayable (recorded before decisions kept their facts)",
            report.not_replayable
        ));
    }
    out.push('\n');
    if report.transitions.is_empty() {
        return out;
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(["transition", "count", "examples"]);
    for t in &report.transitions {
        let examples: Vec<String> = t
            .examples
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {} ({} → {})",
                    e.decision_id,
                    e.agent,
                    e.action,
                    e.resource,
                    e.reasons_before.first().map_or("-", String::as_str),
                    e.reasons_after.first().map_or("-", String::as_str)
                )
            })
            .collect();
        table.add_row([
            format!("{} → {}", t.from, t.to),
            t.count.to_string(),
            examples.join("\n"),
        ]);
    }
    out.push_str(&format!("{table}\n"));
    if report.widens() {
        out.push_str(
            "WIDENS: decisions that were not allowed would be allowed under the candidate; \
             a human must review it\n",
        );
    }
    out
}

fn load(dir: &std::path::Path) -> anyhow::Result<Bundle> {
    BundleDir::new(dir)
        .load()
        .with_context(|| format!("cannot load the bundle in {}", dir.display()))
}

/// `--since`: an age back from now, or an instant.
fn since(text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let age: BundleDuration = text.parse().map_err(|e| {
        anyhow::anyhow!(
            "--since: `{text}` is neither an age (7d, 12h, 30m) nor an RFC 3339 time: {e}"
        )
    })?;
    Ok(Timestamp::now()
        .checked_sub(age.as_signed())
        .unwrap_or(Timestamp::MIN))
}
