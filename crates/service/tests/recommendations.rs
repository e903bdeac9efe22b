//! The recommendations waiting for an operator's verdict, on SQLite and
//! PostgreSQL: one assist agent's flood does not push another agent's off
//! the list (its gate would stall, ungraded).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use clearance_engine::Outcome;
use clearance_store::Store;
use support::{CONFIG, World, request, source_of};

/// A second assist agent beside the test bundle's.
fn two_assistants() -> clearance_engine::BundleSource {
    source_of(&CONFIG.replace(
        "  remediate-bot:",
        "  assist-two:     { owner: oncall@example.com, phase: assist,     credential_scope: k8s:sa/ops/assist-two,     domains: [payments] }\n  remediate-bot:",
    ))
}

async fn one_agents_flood_buries_no_other_agents_recommendation<S: Store>(world: World<S>) {
    let quiet = world
        .decide(request("assist-two", "kubectl:rollout-restart"))
        .await;
    assert_eq!(quiet.decision.outcome, Outcome::Recommend);
    let mut flood = Vec::new();
    for n in 0..105 {
        let mut restart = request("assist-bot", "kubectl:rollout-restart");
        restart.resource.name = format!("checkout-api-{n}");
        let answer = world.decide(restart).await;
        assert_eq!(answer.decision.outcome, Outcome::Recommend);
        flood.push(answer.decision_id);
    }
    let listed = world
        .gateway
        .trust()
        .recommendations(&world.approver, 100)
        .await
        .unwrap();
    let of = |agent: &str| listed.iter().filter(|r| r.request.agent == agent).count();
    assert_eq!(
        of("assist-two"),
        1,
        "the quiet agent's recommendation is listed"
    );
    assert_eq!(of("assist-bot"), 20, "the newest 20 of the flood");
    let newest: Vec<&String> = flood.iter().rev().take(20).collect();
    let flood_listed: Vec<&String> = listed
        .iter()
        .filter(|r| r.request.agent == "assist-bot")
        .map(|r| &r.decision_id)
        .collect();
    assert_eq!(flood_listed, newest, "newest first");
    assert_eq!(listed.last().unwrap().request.agent, "assist-two");
    // Fewer than every agent's share: each agent's newest comes first.
    let few = world
        .gateway
        .trust()
        .recommendations(&world.approver, 4)
        .await
        .unwrap();
    let agents: Vec<&str> = few.iter().map(|r| r.request.agent.as_str()).collect();
    assert_eq!(
        agents,
        ["assist-bot", "assist-bot", "assist-bot", "assist-two"]
    );
}

both!(
    one_agents_flood_buries_no_other_agents_recommendation,
    super::two_assistants()
);
