//! Console sessions where they live, on SQLite and PostgreSQL: only
//! operators sign in; a session ends when idle — a page refreshing itself
//! does not keep it alive, the operator's requests do — when revoked, when
//! signed out, and when the token it was opened with is revoked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use clearance_engine::Identity;
use clearance_service::{Activity, ServiceError};
use clearance_store::Store;
use support::{World, agent};

async fn token<S: Store>(world: &World<S>, identity: &Identity) -> String {
    world.gateway.issue_token(identity).await.unwrap()
}

async fn sessions_end_when_idle_revoked_or_signed_out<S: Store>(world: World<S>) {
    let sessions = world.gateway.sessions();
    for identity in [agent("shadow-bot"), world.harness.clone()] {
        let token = token(&world, &identity).await;
        assert!(matches!(
            sessions.sign_in(&token).await,
            Err(ServiceError::Forbidden(_))
        ));
    }
    assert!(matches!(
        sessions.sign_in("clr_not-a-token").await,
        Err(ServiceError::Unauthenticated(_))
    ));
    let refreshed = sessions
        .sign_in(&token(&world, &world.approver).await)
        .await
        .unwrap();
    let active = sessions
        .sign_in(&token(&world, &world.second_approver).await)
        .await
        .unwrap();
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
    let other = sessions
        .sign_in(&token(&world, &world.admin).await)
        .await
        .unwrap();
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

/// Revoking a token ends every session opened with it, at its next
/// request, and closes them where sessions are listed; the operator's
/// session opened with another token goes on.
async fn revoking_a_token_ends_the_sessions_it_opened<S: Store>(world: World<S>) {
    let sessions = world.gateway.sessions();
    let leaked = token(&world, &world.approver).await;
    let kept = token(&world, &world.approver).await;
    let first = sessions.sign_in(&leaked).await.unwrap();
    let second = sessions.sign_in(&leaked).await.unwrap();
    let other = sessions.sign_in(&kept).await.unwrap();
    assert_eq!(sessions.list(&world.approver).await.unwrap().len(), 3);
    world
        .gateway
        .revoke_token(&world.admin, &leaked)
        .await
        .unwrap();
    for ended in [&first, &second] {
        assert!(matches!(
            sessions.resume(&ended.secret).await,
            Err(ServiceError::Unauthenticated(_))
        ));
        // Closed in the store by the revocation itself, not only refused.
        let row = world
            .gateway
            .store()
            .find_session(&clearance_service::token_hash(&ended.secret))
            .await
            .unwrap()
            .unwrap();
        assert!(row.closed_at.is_some(), "{row:?}");
    }
    let kept_row = world
        .gateway
        .store()
        .find_session(&clearance_service::token_hash(&other.secret))
        .await
        .unwrap()
        .unwrap();
    assert!(kept_row.closed_at.is_none());
    assert_eq!(
        sessions.resume(&other.secret).await.unwrap().identity,
        world.approver
    );
    let open: Vec<String> = sessions
        .list(&world.admin)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(open, vec![other.session.id.clone()]);
    assert!(matches!(
        sessions.sign_in(&leaked).await,
        Err(ServiceError::Unauthenticated(_))
    ));
    let opened = world.records("session.opened").await;
    assert_eq!(
        opened[0].1["token_sha256"],
        clearance_service::token_hash(&leaked)
    );
    world.verify().await;
}
both!(revoking_a_token_ends_the_sessions_it_opened);

/// No session outlives its token's revocation, however the two race: each
/// round, eight sign-ins with one token run beside its revocation; every
/// session that was opened is refused afterwards.
async fn no_session_outlives_a_revocation_it_raced<S: Store>(world: World<S>) {
    let mut opened_in_all = 0;
    for _round in 0..20 {
        let token = token(&world, &world.admin).await;
        let mut signing_in = Vec::new();
        for _ in 0..8 {
            let gateway = world.gateway.clone();
            let token = token.clone();
            signing_in.push(tokio::spawn(async move {
                gateway.sessions().sign_in(&token).await
            }));
        }
        let gateway = world.gateway.clone();
        let admin = world.admin.clone();
        let revoking = token.clone();
        let revoked = tokio::spawn(async move { gateway.revoke_token(&admin, &revoking).await });
        let mut opened = Vec::new();
        for task in signing_in {
            match task.await.unwrap() {
                Ok(signed_in) => opened.push(signed_in),
                Err(ServiceError::Unauthenticated(_)) => {}
                Err(other) => panic!("sign-in failed otherwise: {other}"),
            }
        }
        revoked.await.unwrap().unwrap();
        opened_in_all += opened.len();
        for signed_in in opened {
            assert!(
                matches!(
                    world.gateway.sessions().resume(&signed_in.secret).await,
                    Err(ServiceError::Unauthenticated(_))
                ),
                "session {} outlived its token",
                signed_in.session.id
            );
        }
        assert!(
            world
                .gateway
                .sessions()
                .list(&world.admin)
                .await
                .unwrap()
                .is_empty(),
            "no session of a revoked token is listed"
        );
    }
    assert!(opened_in_all > 0, "some sign-ins ran before the revocation");
    world.verify().await;
}
both!(no_session_outlives_a_revocation_it_raced);
