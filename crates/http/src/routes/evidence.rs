//! `POST /v1/simulations`, `POST /v1/rollback-tests`.

use axum::Json;
use clearance_service::{RollbackTestReport, SimulationInput};
use clearance_store::Store;
use serde_json::{Value, json};

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, JsonBody},
};

/// Record a simulation report (harness or admin).
#[utoipa::path(post, path = "/v1/simulations", tag = "evidence",
    request_body = SimulationInput,
    responses((status = 200), (status = 403), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn simulation<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    JsonBody(input): JsonBody<SimulationInput>,
) -> Result<Json<Value>, ApiError> {
    let seq = gateway.reports().simulation(&identity, input).await?;
    Ok(Json(json!({ "ledger_seq": seq })))
}

/// Record a rollback playbook test (harness or admin).
#[utoipa::path(post, path = "/v1/rollback-tests", tag = "evidence",
    request_body = RollbackTestReport,
    responses((status = 200), (status = 403), (status = 422)), security(("bearer" = [])))]
pub(crate) async fn rollback_test<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    JsonBody(input): JsonBody<RollbackTestReport>,
) -> Result<Json<Value>, ApiError> {
    let seq = gateway.reports().rollback_test(&identity, input).await?;
    Ok(Json(json!({ "ledger_seq": seq })))
}
