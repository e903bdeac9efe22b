//! `GET /v1/audit`, `GET /v1/audit/verify`, `GET /v1/decisions/{id}`.

use axum::Json;
use clearance_engine::ledger::LedgerRecord;
use clearance_store::{AuditQuery, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, PathParams, QueryParams},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: u32,
    kind: Option<String>,
    agent: Option<String>,
}

fn default_limit() -> u32 {
    100
}

fn record(r: &LedgerRecord) -> Value {
    let payload: Value =
        serde_json::from_str(&r.payload).unwrap_or_else(|_| Value::String(r.payload.clone()));
    json!({ "seq": r.seq, "at": r.at, "kind": r.kind, "payload": payload, "prev_hash": r.prev_hash.to_hex(), "hash": r.hash.to_hex() })
}

/// A page of ledger records, oldest first (operators). Page on with
/// `after` = the last `seq` seen.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("after" = Option<u64>, Query), ("limit" = Option<u32>, Query, description = "1..1000, default 100"), ("kind" = Option<String>, Query), ("agent" = Option<String>, Query)),
    responses((status = 200), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn page<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    QueryParams(params): QueryParams<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    let records = gateway
        .audit()
        .page(
            &identity,
            AuditQuery {
                after: params.after,
                limit: params.limit,
                kind: params.kind,
                agent: params.agent,
            },
        )
        .await?;
    let next_after = records.last().map(|r| r.seq);
    Ok(Json(
        json!({ "records": records.iter().map(record).collect::<Vec<_>>(), "next_after": next_after }),
    ))
}

/// Re-read and re-hash the whole ledger (operators).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, description = "`ok` false names the first bad record"), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn verify<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
) -> Result<Json<Value>, ApiError> {
    let report = gateway.audit().verify(&identity).await?;
    Ok(Json(json!({
        "ok": report.first_break.is_none(),
        "verified": report.verified,
        "head": report.head.to_hex(),
        "first_break": report.first_break.map(|b| json!({ "seq": b.seq, "problem": b.problem })),
    })))
}

/// A decision's lineage (operators): its record (request, identity, every
/// check), the approval it opened or ran on with each operator's verdict
/// and their records, the platform audit event that ran it, and its
/// outcome record once reported.
#[utoipa::path(get, path = "/v1/decisions/{id}", tag = "audit",
    params(("id" = String, Path, description = "The decision id")),
    responses((status = 200), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn lineage<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let lineage = gateway.audit().lineage(&identity, &id).await?;
    let approval = lineage.approval.map(|a| {
        json!({
            "id": a.id,
            "opened_here": a.opened_here,
            "status": a.status,
            "used": a.used,
            "votes": a.votes.iter().map(|(operator, verdict)| json!({ "operator": operator, "verdict": verdict })).collect::<Vec<_>>(),
            "expires_at": a.expires_at,
        })
    });
    Ok(Json(json!({
        "decision_id": id,
        "decision": record(&lineage.decision),
        "approval": approval,
        "approval_records": lineage.approval_records.iter().map(record).collect::<Vec<_>>(),
        "platform_events": lineage.platform_events.iter().map(record).collect::<Vec<_>>(),
        "outcome": lineage.outcome.as_ref().map(record),
    })))
}
