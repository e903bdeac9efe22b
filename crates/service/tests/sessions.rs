//! Console sessions where they live, on SQLite and PostgreSQL: only
//! operators sign in; a session ends when idle — a page refreshing itself
//! does not keep it alive, the operator's requests do — when revoked, and
//! when signed out.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use clearance_service::{Activity, ServiceError};
use clearance_store::Store;
use support::{World, agent};

async fn sessions_end_when_idle_revoked_or_signed_out<S: Store>(world: World<S>) {
    let sessions = world.gateway.sessions();
    for identity in [agent("shadow-bot"), world.harness.clone()] {
        assert!(matches!(
            sessions.sign_in(&identity).await,
            Err(ServiceError::Forbidden(_))
        ));
    }
    let refreshed = sessions.sign_in(&world.approver).await.unwrap();
    let active = sessions.sign_in(&world.second_approver).await.unwrap();
    world.advance(25 * 60);
    sessions
        .resume_with(&refreshed.secret, Activity::Refresh)
        .await
        .unwrap();
    sessions
        .resume_with(&active.secret, Activity::Operator)
        .await
        .unwrap();
    world.advance(10 * 60);
    // 35 minutes after sign-in: only the refreshing one went idle.
    assert!(matches!(
        sessions.resume(&refreshed.secret).await,
        Err(ServiceError::Unauthenticated(why)) if why.contains("idle")
    ));
    let resumed = sessions.resume(&active.secret).await.unwrap();
    assert_eq!(resumed.identity, world.second_approver);
    // An approver cannot revoke another operator's session; an admin can.
    let other = sessions.sign_in(&world.admin).await.unwrap();
    assert!(matches!(
        sessions.revoke(&world.approver, &other.session.id).await,
        Err(ServiceError::Forbidden(_))
    ));
    sessions
        .revoke(&world.admin, &resumed.session.id)
        .await
        .unwrap();
    assert!(sessions.resume(&active.secret).await.is_err());
    assert!(matches!(
        sessions.revoke(&world.admin, &resumed.session.id).await,
        Err(ServiceError::NotFound(_))
    ));
    sessions.sign_out(&other.secret).await.unwrap();
    assert!(sessions.resume(&other.secret).await.is_err());
    let closed = world.records("session.closed").await;
    assert_eq!(closed.len(), 2);
    assert_eq!(closed[0].1["closing"], "revoked");
    assert_eq!(closed[1].1["closing"], "signed_out");
    world.verify().await;
}
both!(sessions_end_when_idle_revoked_or_signed_out);
