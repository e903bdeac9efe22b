//! `POST /v1/platform-events/kubernetes`: the Kubernetes API server's
//! audit webhook.

use axum::Json;
use clearance_engine::reconcile::kubernetes::EventList;
use clearance_service::ReconcileReport;
use clearance_store::Store;

use super::Shared;
use crate::{
    ApiError,
    extract::{Caller, JsonBody},
};

/// The largest webhook body accepted: the API server batches up to 400
/// events by default, each a few kilobytes at the `Metadata` level.
pub const MAX_AUDIT_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Reconcile a batch of audit events (harness or admin): the body is the
/// API server's audit webhook `EventList` (`audit.k8s.io/v1`). Each write
/// by an agent's service account either matches an allowed execution or
/// is an out-of-scope action (the agent is demoted to shadow and locked);
/// a 403 is an unsafe attempt. An event counts once, however often it is
/// sent.
#[utoipa::path(post, path = "/v1/platform-events/kubernetes", tag = "platform",
    request_body(content = Object, description = "An audit.k8s.io/v1 EventList"),
    responses((status = 200, body = ReconcileReport), (status = 403), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn kubernetes<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    JsonBody(list): JsonBody<EventList>,
) -> Result<Json<ReconcileReport>, ApiError> {
    Ok(Json(
        gateway.reconcile().kubernetes(&identity, &list).await?,
    ))
}
