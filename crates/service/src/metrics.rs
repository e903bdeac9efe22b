//! [`Metrics`]: the Prometheus series clearance exports, in a registry of
//! its own (no process-global recorder, so several gateways can run in one
//! test process).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    webhook: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: &'static str,
    impact: &'static str,
}

/// The counters and histograms, and the registry that exports them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    unsafe_blocked: Counter,
    time_to_recovery: Histogram,
    ledger_failures: Counter,
    phase: Family<AgentLabels, Gauge>,
    locked: Family<AgentLabels, Gauge>,
    promotions: Family<CauseLabels, Counter>,
    demotions: Family<CauseLabels, Counter>,
    evidence: Family<KindLabels, Counter>,
    followed: Counter,
    unreadable: Counter,
    publications: Family<KindLabels, Counter>,
    publications_pending: Gauge,
    platform_events: Family<KindLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("clearance");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let unsafe_blocked = Counter::default();
        // 1 s to ~9 h: recoveries are measured in seconds to hours.
        let time_to_recovery = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 16),
        );
        let ledger_failures = Counter::default();
        registry.register(
            "decisions",
            "Decisions by outcome and impact class",
            decisions.clone(),
        );
        registry.register("unsafe_actions_blocked", "Write executions denied before they ran (out of scope, kill switch, hard stop, missing evidence, invalid approval)", unsafe_blocked.clone());
        registry.register(
            "time_to_recovery_seconds",
            "From a failed execution to recovery, as reported with outcomes",
            time_to_recovery.clone(),
        );
        registry.register(
            "ledger_append_failures",
            "Ledger appends that failed; each refused what it carried",
            ledger_failures.clone(),
        );
        let (phase, locked) = (
            Family::<AgentLabels, Gauge>::default(),
            Family::<AgentLabels, Gauge>::default(),
        );
        let (promotions, demotions) = (
            Family::<CauseLabels, Counter>::default(),
            Family::<CauseLabels, Counter>::default(),
        );
        let evidence = Family::<KindLabels, Counter>::default();
        registry.register(
            "agent_phase",
            "Each agent's phase, 1 (shadow) to 4 (autonomous), once it changed",
            phase.clone(),
        );
        registry.register(
            "agent_locked",
            "1 while an agent is locked pending an investigation",
            locked.clone(),
        );
        registry.register(
            "promotions",
            "Promotions by the phase reached",
            promotions.clone(),
        );
        registry.register("demotions", "Demotions by cause", demotions.clone());
        registry.register(
            "evidence_samples",
            "Evidence samples recorded, by kind",
            evidence.clone(),
        );
        let (followed, unreadable) = (Counter::default(), Counter::default());
        registry.register(
            "ledger_records_followed",
            "Records other instances appended, applied to this instance's state",
            followed.clone(),
        );
        registry.register(
            "ledger_records_unreadable",
            "Records of other writers this instance could not apply (its state misses them)",
            unreadable.clone(),
        );
        let (publications, publications_pending) =
            (Family::<KindLabels, Counter>::default(), Gauge::default());
        registry.register(
            "gitops_publications",
            "Attempts to publish a phase change to the GitOps repository, by result (published, retry, failed)",
            publications.clone(),
        );
        registry.register(
            "gitops_publications_pending",
            "Agents whose latest phase change is not yet published (pending or failed)",
            publications_pending.clone(),
        );
        let platform_events = Family::<KindLabels, Counter>::default();
        registry.register(
            "platform_events",
            "Events of the platform's audit log reconciled, by result (matched, out_of_scope, denied, duplicate, ignored)",
            platform_events.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Webhook deliveries by webhook id and result (delivered, failed)",
            notifications.clone(),
        );
        Metrics {
            registry,
            notifications,
            platform_events,
            publications,
            publications_pending,
            followed,
            unreadable,
            decisions,
            unsafe_blocked,
            time_to_recovery,
            ledger_failures,
            phase,
            locked,
            promotions,
            demotions,
            evidence,
        }
    }
}

impl Metrics {
    pub(crate) fn decision(
        &self,
        outcome: &'static str,
        impact: &'static str,
        unsafe_blocked: bool,
    ) {
        self.decisions
            .get_or_create(&DecisionLabels { outcome, impact })
            .inc();
        if unsafe_blocked {
            self.unsafe_blocked.inc();
        }
    }

    pub(crate) fn recovery(&self, seconds: f64) {
        self.time_to_recovery.observe(seconds);
    }

    pub(crate) fn ledger_failure(&self) {
        self.ledger_failures.inc();
    }

    pub(crate) fn standing(&self, agent: &str, phase: clearance_engine::Phase, locked: bool) {
        let labels = AgentLabels {
            agent: agent.to_owned(),
        };
        self.phase
            .get_or_create(&labels)
            .set(i64::from(phase.number()));
        self.locked.get_or_create(&labels).set(i64::from(locked));
    }

    pub(crate) fn promotion(&self, to: clearance_engine::Phase) {
        self.promotions
            .get_or_create(&CauseLabels { cause: to.name() })
            .inc();
    }

    pub(crate) fn demotion(&self, cause: &'static str) {
        self.demotions.get_or_create(&CauseLabels { cause }).inc();
    }

    /// One webhook delivery attempt: `delivered` or `failed`.
    pub fn notification(&self, webhook: &str, delivered: bool) {
        self.notifications
            .get_or_create(&NotificationLabels {
                webhook: webhook.to_owned(),
                result: if delivered { "delivered" } else { "failed" },
            })
            .inc();
    }

    pub(crate) fn platform_event(&self, kind: &'static str) {
        self.platform_events
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    pub(crate) fn evidence(&self, kind: &'static str) {
        self.evidence.get_or_create(&KindLabels { kind }).inc();
    }

    pub(crate) fn publication(&self, state: &crate::PublicationState) {
        let kind = match state {
            crate::PublicationState::Published => "published",
            crate::PublicationState::Pending => "retry",
            crate::PublicationState::Failed => "failed",
        };
        self.publications.get_or_create(&KindLabels { kind }).inc();
    }

    pub(crate) fn publications_pending(&self, count: usize) {
        self.publications_pending
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(crate) fn followed(&self) {
        self.followed.inc();
    }

    pub(crate) fn unreadable_record(&self) {
        self.unreadable.inc();
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
