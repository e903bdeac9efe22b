//! The owners of ended sessions are forgotten: against rmcp's own session
//! manager, sessions opened and ended by the thousand leave the map within
//! twice the live ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use rmcp::transport::streamable_http_server::session::{
    SessionManager as _, local::LocalSessionManager,
};

use super::{Owners, sweep};

/// Opens a session in `sessions` and records it in `owners`, sweeping as
/// the gateway does; the session's id.
async fn open(owners: &Mutex<Owners>, sessions: &LocalSessionManager) -> String {
    let (id, _transport) = sessions.create_session().await.unwrap();
    let due = owners
        .lock()
        .unwrap()
        .opened(id.to_string(), "agent".into());
    if let Some(known) = due {
        sweep(owners, sessions, known).await;
    }
    id.to_string()
}

#[tokio::test]
async fn owners_of_ended_sessions_are_forgotten_and_the_map_stays_bounded() {
    let sessions = LocalSessionManager::default();
    let owners = Mutex::new(Owners::default());
    let mut live = std::collections::VecDeque::new();
    for _ in 0..3_000 {
        live.push_back(open(&owners, &sessions).await);
        // Ten stay open; the rest end without a word to the gateway.
        if live.len() > 10 {
            let ended = live.pop_front().unwrap();
            sessions
                .close_session(&ended.as_str().into())
                .await
                .unwrap();
        }
        let known = owners.lock().unwrap().by_session.len();
        assert!(
            known <= Owners::FIRST_SWEEP.max(2 * live.len()) + 1,
            "{known} owners kept for {} live sessions",
            live.len()
        );
    }
    let owners = owners.lock().unwrap();
    for session in &live {
        assert_eq!(
            owners.get(session).map(String::as_str),
            Some("agent"),
            "a live session keeps its owner"
        );
    }
}

#[tokio::test]
async fn a_sweep_keeps_every_live_session_and_none_starts_while_one_runs() {
    let sessions = LocalSessionManager::default();
    let mut owners = Owners::default();
    let mut ids = Vec::new();
    let mut due = None;
    for _ in 0..Owners::FIRST_SWEEP {
        let (id, _transport) = sessions.create_session().await.unwrap();
        ids.push(id.to_string());
        due = owners.opened(id.to_string(), "agent".into());
    }
    let known = due.expect("a sweep is due once the map reaches its first size");
    assert_eq!(known.len(), Owners::FIRST_SWEEP);
    assert!(
        owners.opened("late".into(), "agent".into()).is_none(),
        "no second sweep while one runs"
    );
    let owners = Mutex::new(owners);
    sweep(&owners, &sessions, known).await;
    let owners = owners.lock().unwrap();
    assert_eq!(
        owners.by_session.len(),
        Owners::FIRST_SWEEP + 1,
        "all were live"
    );
    assert_eq!(owners.next_sweep, 2 * (Owners::FIRST_SWEEP + 1));
}
