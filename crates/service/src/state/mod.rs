//! [`State`]: the in-memory mirror of what the ledger says — phases, open
//! approvals, tripped kill switches, the newest evidence, recent
//! executions — changed by one function, [`State::apply`], for effects this
//! instance committed, effects other instances committed, and the rows
//! loaded at start-up alike.
//!
//! Besides the committed mirror it holds what is [`InFlight`]: the effects
//! of entries submitted and not yet committed. Decisions read both, so two
//! concurrent requests cannot spend the same approval or the last slot of
//! a hard stop, and at-most-once rules are admitted in one place
//! ([`InFlight::admit`]) under the state lock. The store enforces the same
//! rules again inside its transaction, which is what holds across
//! instances.

mod facts;
mod in_flight;

use std::collections::{HashMap, VecDeque};

use clearance_engine::{
    Bundle, Phase,
    facts::{ApprovalStatus, Execution, RollbackTest, SimulationReport},
    trust::Tally,
};
use clearance_store::{
    AgentRow, ApprovalRow, Effect, EvidenceRow, KillSwitchRow, PromotionRow, StoredState,
};
use jiff::Timestamp;

pub(crate) use in_flight::{Claim, InFlight};

/// How far past this instance's clock another instance's record may move
/// the times this one hands out ([`State::now`]): as far as the clock skew
/// tolerated elsewhere. An instance whose clock runs further ahead does
/// not drag every other instance's times with it.
const FOLLOWED_AHEAD: jiff::SignedDuration = clearance_engine::decision::CLOCK_SKEW;

/// An agent's standing: its phase, lock, and the evidence since it entered
/// the phase (`tally.since`).
#[derive(Clone, Debug)]
pub(crate) struct Standing {
    pub phase: Phase,
    pub locked: bool,
    pub tally: Tally,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// The newest ledger record applied.
    pub applied: u64,
    /// Record `applied` as the store's writer handed it over (written by
    /// this instance, or read and linked to what it had): its hash, and
    /// whether it is a checkpoint. `None` until a record is applied after
    /// start. What a checkpoint signs, rather than the head read back from
    /// the database, which may have been changed since.
    pub applied_head: Option<(clearance_engine::ledger::Digest32, bool)>,
    /// The latest time handed out: the clock as the state sees it never
    /// goes backwards, so a reservation is never stamped before one taken
    /// earlier.
    last_now: Option<Timestamp>,
    /// The latest time of another instance's record applied here, up to
    /// [`FOLLOWED_AHEAD`] past this clock: what is handed out next is later.
    last_followed: Option<Timestamp>,
    /// Agents whose standing is stored.
    pub standings: HashMap<String, Standing>,
    /// Promotions waiting for sign-offs, by id.
    pub promotions: HashMap<String, PromotionRow>,
    /// Approvals that can still count: pending, or approved and unused.
    pub approvals: HashMap<String, ApprovalRow>,
    /// Kill switches tripped and not reset.
    pub kill_switches: Vec<KillSwitchRow>,
    /// The newest simulation report of each plan.
    pub simulations: HashMap<String, SimulationReport>,
    /// The newest test of each playbook.
    pub rollback_tests: HashMap<String, RollbackTest>,
    /// Allowed executions per agent, oldest first.
    pub executions: HashMap<String, VecDeque<Execution>>,
    /// What submitted entries will change once committed.
    pub in_flight: InFlight,
    /// The first record another writer appended that this instance could
    /// not read (a kind or payload of a newer version): the state misses
    /// what it changed — a kill switch, say — so nothing is decided on it.
    pub unreadable: Option<u64>,
}

impl State {
    /// The state the stored rows describe, as of record `stored.as_of`;
    /// `evidence` is fed in afterwards through [`State::apply`].
    pub(crate) fn from_stored(stored: StoredState) -> State {
        let mut state = State {
            applied: stored.as_of,
            ..State::default()
        };
        let effects = stored
            .agents
            .into_iter()
            .map(|row| Effect::AgentChanged {
                row,
                expected: None,
            })
            .chain(stored.promotions.into_iter().map(Effect::PromotionOpened))
            .chain(
                stored
                    .approvals
                    .into_iter()
                    .map(|row| Effect::ApprovalOpened(Box::new(row))),
            )
            .chain(
                stored
                    .kill_switches
                    .into_iter()
                    .map(Effect::KillSwitchTripped),
            )
            .chain(
                stored
                    .simulations
                    .into_iter()
                    .map(Effect::SimulationRecorded),
            )
            .chain(
                stored
                    .rollback_tests
                    .into_iter()
                    .map(Effect::RollbackTested),
            );
        for effect in effects {
            state.apply(&effect);
        }
        for execution in stored.executions {
            state.count_execution(
                &execution.agent,
                Execution {
                    impact: execution.impact,
                    at: execution.at,
                },
            );
        }
        state
    }

    /// Now, to the microsecond (the ledger writes times to the
    /// microsecond, and a decision replayed from its record must see the
    /// instant it was made at), and later than every time handed out
    /// before and every record of another instance applied here (up to
    /// [`FOLLOWED_AHEAD`] past this clock). So a record is never dated at
    /// or before one whose effects it was decided on: a demotion's phase
    /// starts after the sample that caused it, even when the clock stands
    /// still or another instance's runs ahead, and the sample never counts
    /// again in the phase it started.
    pub(crate) fn now(&mut self, clock: Timestamp) -> Timestamp {
        let clock = Timestamp::from_microsecond(clock.as_microsecond()).unwrap_or(clock);
        let bound = clock.checked_add(FOLLOWED_AHEAD).unwrap_or(clock);
        let after = self
            .last_now
            .into_iter()
            .chain(self.last_followed.map(|at| at.min(bound)))
            .max();
        let now = match after {
            Some(last) if clock <= last => last
                .checked_add(jiff::SignedDuration::from_micros(1))
                .unwrap_or(last),
            _ => clock,
        };
        self.last_now = Some(now);
        now
    }

    /// Another instance's record, dated `at`, was applied.
    pub(crate) fn followed(&mut self, at: Timestamp) {
        self.last_followed = Some(self.last_followed.map_or(at, |last| last.max(at)));
    }

    /// The agent's current phase: stored, else the bundle's starting phase.
    pub(crate) fn phase(&self, bundle: &Bundle, agent: &str) -> Option<Phase> {
        self.standings
            .get(agent)
            .map(|s| s.phase)
            .or_else(|| bundle.agent(agent).map(|a| a.starting_phase))
    }

    /// Applies one committed effect. The only way the mirror changes.
    pub(crate) fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::DecisionRecorded(d) => {
                if d.execution {
                    self.count_execution(
                        &d.agent,
                        Execution {
                            impact: d.impact,
                            at: d.at,
                        },
                    );
                }
            }
            Effect::ApprovalOpened(row) => {
                // What an approver reads (up to 64 KiB a request) stays in
                // the store: the state decides on the digest, and an agent
                // opening approval after approval must not grow memory.
                let mut row = row.as_ref().clone();
                row.request.arguments = None;
                self.approvals.insert(row.approval.id.clone(), row);
            }
            Effect::ApprovalSettled { id, status, by, .. } => match status {
                // One vote; the one that brings the distinct approvers to
                // `required` approves it, as the store decides.
                ApprovalStatus::Approved => {
                    if let Some(row) = self.approvals.get_mut(id) {
                        row.approval.vote(by);
                    }
                }
                _ => {
                    self.approvals.remove(id);
                }
            },
            Effect::ApprovalUsed { id } => {
                self.approvals.remove(id);
            }
            Effect::ApprovalsVoided { ids, .. } => {
                for id in ids {
                    self.approvals.remove(id);
                }
            }
            Effect::KillSwitchTripped(row) => {
                if !self
                    .kill_switches
                    .iter()
                    .any(|k| k.switch.id == row.switch.id)
                {
                    self.kill_switches.push(row.clone());
                }
            }
            Effect::KillSwitchReset { id, .. } => {
                self.kill_switches
                    .retain(|row| row.switch.id.as_deref() != Some(id));
            }
            Effect::SimulationRecorded(report) => {
                keep_newest(&mut self.simulations, &report.plan_id, report, |r| {
                    r.produced_at
                })
            }
            Effect::RollbackTested(row) => keep_newest(
                &mut self.rollback_tests,
                &row.test.playbook,
                &row.test,
                |t| t.tested_at,
            ),
            Effect::AgentRegistered(row) => {
                if !self.standings.contains_key(&row.id) {
                    self.set_standing(row);
                }
            }
            Effect::AgentChanged { row, .. } => self.set_standing(row),
            Effect::EvidenceRecorded(row) => self.count_sample(row),
            Effect::PromotionOpened(row) => {
                self.promotions.insert(row.id.clone(), row.clone());
            }
            Effect::PromotionSigned { id, operator, .. } => {
                if let Some(promotion) = self.promotions.get_mut(id)
                    && !promotion.signoffs.contains(operator)
                {
                    promotion.signoffs.push(operator.clone());
                }
            }
            Effect::PromotionClosed { id, .. } => {
                self.promotions.remove(id);
            }
            Effect::OutcomeReported { .. }
            | Effect::PlatformEventRecorded { .. }
            | Effect::TokenIssued(_)
            | Effect::TokenRevoked { .. }
            | Effect::SessionOpened(_)
            | Effect::SessionClosed { .. }
            | Effect::BundleActivated { .. } => {}
        }
    }

    /// A new phase starts a new tally; a lock change keeps it.
    fn set_standing(&mut self, row: &AgentRow) {
        match self.standings.get_mut(&row.id) {
            Some(standing) if standing.tally.since == row.phase_since => {
                standing.phase = row.phase;
                standing.locked = row.locked;
            }
            _ => {
                self.standings.insert(
                    row.id.clone(),
                    Standing {
                        phase: row.phase,
                        locked: row.locked,
                        tally: Tally::new(row.phase_since),
                    },
                );
            }
        }
    }

    /// Counts a sample toward its agent's phase when taken after the phase
    /// began. An agent with no stored standing has none to count toward: it
    /// is registered before any evidence about it is accepted.
    fn count_sample(&mut self, row: &EvidenceRow) {
        // What is handed out next is later than any sample counted, those
        // loaded at start included: a phase this instance starts after a
        // restart, its clock behind the instance that took the sample,
        // starts after the sample all the same.
        self.followed(row.at);
        match self.standings.get_mut(&row.agent) {
            Some(standing) if row.at >= standing.tally.since => {
                standing.tally.add(&row.sample, row.at);
            }
            Some(_) => {}
            None => tracing::debug!(agent = %row.agent, "evidence for an unregistered agent"),
        }
    }

    fn count_execution(&mut self, agent: &str, execution: Execution) {
        self.executions
            .entry(agent.to_owned())
            .or_default()
            .push_back(execution);
    }

    /// Forgets executions older than every hard-stop window.
    pub(crate) fn prune_executions(&mut self, agent: &str, horizon: Timestamp) {
        if let Some(executions) = self.executions.get_mut(agent) {
            while executions.front().is_some_and(|e| e.at < horizon) {
                executions.pop_front();
            }
        }
    }
}

/// Remembers `item` under `key` unless what is remembered there is newer:
/// evidence can arrive out of order, and only the newest counts.
fn keep_newest<T: Clone>(
    known: &mut HashMap<String, T>,
    key: &str,
    item: &T,
    at: impl Fn(&T) -> Timestamp,
) {
    if known.get(key).is_none_or(|current| at(current) <= at(item)) {
        known.insert(key.to_owned(), item.clone());
    }
}
