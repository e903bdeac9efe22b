//! `POST /v1/platform-events/kubernetes`: the Kubernetes API server's
//! audit webhook; `POST /v1/platform-events/cloudtrail`: AWS CloudTrail
//! log files (or the events of one, as a forwarder batches them).

use axum::{
    Json,
    extract::{FromRequest as _, Request},
};
use clearance_engine::reconcile::{cloudtrail::Trail, kubernetes::EventList};
use clearance_service::ReconcileReport;
use clearance_store::Store;

use super::Shared;
use crate::{
    ApiError,
    extract::{AuditBody, Caller},
};

/// The largest body accepted: the API server batches up to 400 events by
/// default, each a few kilobytes at the `Metadata` level; a CloudTrail
/// log file is delivered every 5 minutes and rarely larger. Only a
/// harness or an admin gets its body read: parsed, 16 MiB of JSON can take
/// hundreds of megabytes.
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
    request: Request,
) -> Result<Json<ReconcileReport>, ApiError> {
    gateway.reconcile().may_report(&identity)?;
    let AuditBody(list) = AuditBody::<EventList>::from_request(request, &()).await?;
    Ok(Json(
        gateway.reconcile().kubernetes(&identity, &list).await?,
    ))
}

/// Reconcile CloudTrail events (harness or admin): the body is a trail's
/// log file, `{"Records": [...]}`, uncompressed. Each write by an agent's
/// IAM role (`credential_scope: aws:role/<name>`; `readOnly: false`, or no
/// `readOnly`) either matches an allowed execution of an action whose
/// `aws:` names the call, or is an out-of-scope action; an `AccessDenied`
/// is an unsafe attempt. An event (its `eventID`) counts once.
#[utoipa::path(post, path = "/v1/platform-events/cloudtrail", tag = "platform",
    request_body(content = Object, description = "A CloudTrail log file: {\"Records\": [...]}"),
    responses((status = 200, body = ReconcileReport), (status = 403), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn cloudtrail<S: Store>(
    axum::extract::State(gateway): Shared<S>,
    Caller(identity): Caller,
    request: Request,
) -> Result<Json<ReconcileReport>, ApiError> {
    gateway.reconcile().may_report(&identity)?;
    let AuditBody(trail) = AuditBody::<Trail>::from_request(request, &()).await?;
    Ok(Json(
        gateway.reconcile().cloudtrail(&identity, &trail).await?,
    ))
}
