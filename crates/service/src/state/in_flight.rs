//! [`InFlight`]: the effects of entries submitted to the ledger and not yet
//! committed — reservations that make later decisions stricter until the
//! entry commits (then the committed effect replaces them, atomically) or
//! fails (then they are released).
//!
//! [`InFlight::admit`] is where every at-most-once rule is checked for this
//! instance: an approval used or settled once, one outcome per decision,
//! one reset per trip, one sample per agent, kind and incident, one phase
//! change per agent at a time, one count per platform event and one match
//! per decision.

use std::collections::HashMap;

use clearance_engine::facts::{ApprovalStatus, Execution, KillSwitch};
use clearance_store::{ApprovalRow, ApprovalVoid, Effect, KillSwitchRow};

use super::State;
use crate::ServiceError;

/// A claim on what an in-flight entry holds.
pub(crate) type Claim = u64;

/// What must not be claimed twice at once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Approval(String),
    Vote(String, String),
    Outcome(String),
    Reset(String),
    Sample(String, &'static str, String),
    Agent(String),
    Promotion(String),
    PlatformEvent(String),
    Match(String),
}

#[derive(Debug, Default)]
pub(crate) struct InFlight {
    next: Claim,
    busy: HashMap<Key, Claim>,
    executions: HashMap<String, Vec<(Claim, Execution)>>,
    opening: HashMap<String, (Claim, ApprovalRow)>,
    trips: Vec<(Claim, KillSwitchRow)>,
    held: HashMap<Claim, Vec<Key>>,
}

impl InFlight {
    /// Executions reserved for `agent`.
    pub(crate) fn executions<'a>(&'a self, agent: &str) -> impl Iterator<Item = &'a Execution> {
        self.executions
            .get(agent)
            .into_iter()
            .flatten()
            .map(|(_, e)| e)
    }

    /// Kill switches being tripped.
    pub(crate) fn trips(&self) -> impl Iterator<Item = &KillSwitch> {
        self.trips.iter().map(|(_, row)| &row.switch)
    }

    /// Approvals being opened.
    pub(crate) fn opening(&self) -> impl Iterator<Item = &ApprovalRow> {
        self.opening.values().map(|(_, row)| row)
    }

    /// Whether a platform event is being matched to decision `id`.
    pub(crate) fn decision_being_matched(&self, id: &str) -> bool {
        self.busy.contains_key(&Key::Match(id.to_owned()))
    }

    /// Whether an approval is being used or settled.
    pub(crate) fn approval_busy(&self, id: &str) -> bool {
        self.busy.contains_key(&Key::Approval(id.to_owned()))
    }

    /// Releases everything `claim` holds. Idempotent: a claim released when
    /// its entry committed is not there to release again.
    pub(crate) fn release(&mut self, claim: Claim) {
        let Some(keys) = self.held.remove(&claim) else {
            return;
        };
        for key in keys {
            if self.busy.get(&key) == Some(&claim) {
                self.busy.remove(&key);
            }
        }
        for reserved in self.executions.values_mut() {
            reserved.retain(|(c, _)| *c != claim);
        }
        self.executions.retain(|_, reserved| !reserved.is_empty());
        self.opening.retain(|_, (c, _)| *c != claim);
        self.trips.retain(|(c, _)| *c != claim);
    }
}

impl State {
    /// Whether a sample of `agent` is admitted and not yet recorded: a
    /// promotion measured now would miss it, and the sample, dated before
    /// the promotion yet recorded after it, would count in neither phase.
    pub(crate) fn sampling(&self, agent: &str) -> bool {
        self.in_flight
            .busy
            .keys()
            .any(|key| matches!(key, Key::Sample(sampled, ..) if sampled == agent))
    }

    /// Admits `effects` as in flight, or refuses them if one would break an
    /// at-most-once rule given what is committed and what is in flight.
    /// `None` when they hold nothing a later request must see.
    pub(crate) fn admit(&mut self, effects: &[Effect]) -> Result<Option<Claim>, ServiceError> {
        let mut keys = Vec::new();
        for effect in effects {
            for key in self.key_for(effect)?.into_iter().chain(match_key(effect)) {
                if self.in_flight.busy.contains_key(&key) || keys.contains(&key) {
                    return Err(ServiceError::Conflict(busy_message(&key)));
                }
                keys.push(key);
            }
        }
        let holds_more = effects.iter().any(|e| {
            matches!(
                e,
                Effect::DecisionRecorded(d) if d.execution
            ) || matches!(e, Effect::ApprovalOpened(_) | Effect::KillSwitchTripped(_))
        });
        if keys.is_empty() && !holds_more {
            return Ok(None);
        }
        let flight = &mut self.in_flight;
        flight.next += 1;
        let claim = flight.next;
        for key in &keys {
            flight.busy.insert(key.clone(), claim);
        }
        for effect in effects {
            match effect {
                Effect::DecisionRecorded(d) if d.execution => {
                    flight.executions.entry(d.agent.clone()).or_default().push((
                        claim,
                        Execution {
                            impact: d.impact,
                            at: d.at,
                        },
                    ));
                }
                Effect::ApprovalOpened(row) => {
                    flight
                        .opening
                        .insert(row.approval.id.clone(), (claim, row.as_ref().clone()));
                }
                Effect::KillSwitchTripped(row) => flight.trips.push((claim, row.clone())),
                _ => {}
            }
        }
        flight.held.insert(claim, keys);
        Ok(Some(claim))
    }

    /// The key an effect holds while in flight, after checking it against
    /// what is committed.
    fn key_for(&self, effect: &Effect) -> Result<Option<Key>, ServiceError> {
        Ok(match effect {
            Effect::ApprovalUsed { id } => {
                let usable = self.approvals.get(id).is_some_and(|row| {
                    row.approval.status == ApprovalStatus::Approved && !row.approval.used
                });
                if !usable {
                    return Err(ServiceError::Conflict(format!(
                        "approval `{id}` is no longer approved and unused"
                    )));
                }
                Some(Key::Approval(id.clone()))
            }
            Effect::ApprovalSettled { id, status, by, .. } => {
                let pending = self
                    .approvals
                    .get(id)
                    .filter(|row| row.approval.status == ApprovalStatus::Pending);
                let Some(row) = pending else {
                    return Err(ServiceError::Conflict(format!(
                        "approval `{id}` is no longer pending"
                    )));
                };
                if row.approval.approvers.contains(by) {
                    return Err(ServiceError::Conflict(format!(
                        "`{by}` already approved `{id}`: it needs {} distinct operators",
                        row.approval.required
                    )));
                }
                // Votes of different operators may be in flight together
                // (the store completes the approval once); a denial, like a
                // use, holds the approval itself.
                Some(match status {
                    ApprovalStatus::Approved => Key::Vote(id.clone(), by.clone()),
                    _ => Key::Approval(id.clone()),
                })
            }
            Effect::ApprovalsVoided {
                ids,
                because: ApprovalVoid::Expired | ApprovalVoid::Drifted,
            } => {
                let [id] = ids.as_slice() else {
                    return Err(ServiceError::Conflict(
                        "an expiry or drift voids one approval at a time".into(),
                    ));
                };
                if !self.approvals.contains_key(id) {
                    return Err(ServiceError::Conflict(format!(
                        "approval `{id}` is no longer open"
                    )));
                }
                Some(Key::Approval(id.clone()))
            }
            Effect::KillSwitchReset { id, .. } => {
                if !self
                    .kill_switches
                    .iter()
                    .any(|row| row.switch.id.as_deref() == Some(id.as_str()))
                {
                    return Err(ServiceError::NotFound(format!(
                        "no tripped kill switch `{id}`"
                    )));
                }
                Some(Key::Reset(id.clone()))
            }
            Effect::OutcomeReported { decision_id, .. } => Some(Key::Outcome(decision_id.clone())),
            Effect::EvidenceRecorded(row) => Some(Key::Sample(
                row.agent.clone(),
                row.sample.kind(),
                row.incident_id.clone(),
            )),
            Effect::AgentRegistered(row) | Effect::AgentChanged { row, .. } => {
                Some(Key::Agent(row.id.clone()))
            }
            Effect::PromotionSigned { id, .. } => Some(Key::Promotion(id.clone())),
            Effect::PlatformEventRecorded { key, .. } => Some(Key::PlatformEvent(key.clone())),
            _ => None,
        })
    }
}

/// The decision a platform event claims, besides the event itself.
fn match_key(effect: &Effect) -> Option<Key> {
    match effect {
        Effect::PlatformEventRecorded {
            decision_id: Some(id),
            ..
        } => Some(Key::Match(id.clone())),
        _ => None,
    }
}

fn busy_message(key: &Key) -> String {
    match key {
        Key::Approval(id) => format!("approval `{id}` is being settled or used right now"),
        Key::Vote(id, by) => {
            format!("`{by}`'s vote on approval `{id}` is being recorded right now")
        }
        Key::Outcome(id) => format!("an outcome for decision `{id}` is being recorded right now"),
        Key::Reset(id) => format!("kill switch `{id}` is being reset right now"),
        Key::Sample(agent, kind, incident) => format!(
            "a {kind} sample for agent `{agent}` and incident `{incident}` is being recorded right now"
        ),
        Key::Agent(agent) => format!("agent `{agent}` is changing phase right now"),
        Key::Promotion(id) => format!("promotion `{id}` is being signed right now"),
        Key::PlatformEvent(key) => format!("platform event `{key}` is being recorded right now"),
        Key::Match(id) => format!("decision `{id}` is being matched to a platform event right now"),
    }
}

#[cfg(test)]
mod tests {
    use clearance_engine::trust::Sample;
    use clearance_store::{Effect, EvidenceRow};

    use super::State;

    fn sample(agent: &str) -> Effect {
        Effect::EvidenceRecorded(EvidenceRow {
            agent: agent.into(),
            incident_id: "inc-1".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
            sample: Sample::Escalation { correct: false },
        })
    }

    #[test]
    fn a_sample_in_flight_is_seen_until_its_claim_is_released() {
        let mut state = State::default();
        assert!(!state.sampling("bot-1"));
        let claim = state.admit(&[sample("bot-1")]).unwrap().unwrap();
        assert!(state.sampling("bot-1"));
        assert!(!state.sampling("bot-2"), "another agent's sample");
        state.in_flight.release(claim);
        assert!(!state.sampling("bot-1"));
    }
}
