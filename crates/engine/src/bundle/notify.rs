//! [`Notify`]: `notify:` — the webhooks told when something needs a human
//! (`approval.pending`) or happened to an agent (`agent.demoted`,
//! `agent.locked`) or a switch (`kill_switch.tripped`), in clearance's JSON
//! or Slack's incoming-webhook format, with links into the console.

/// What a webhook can be told of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyEvent {
    /// A request waits for an operator.
    ApprovalPending,
    /// An agent dropped a phase.
    AgentDemoted,
    /// An agent was locked until an investigation.
    AgentLocked,
    /// A kill switch was tripped.
    KillSwitchTripped,
}

impl NotifyEvent {
    /// Every event, in the order they are documented.
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::ApprovalPending,
        NotifyEvent::AgentDemoted,
        NotifyEvent::AgentLocked,
        NotifyEvent::KillSwitchTripped,
    ];

    /// As written in `events:` and sent as `event`.
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::ApprovalPending => "approval.pending",
            NotifyEvent::AgentDemoted => "agent.demoted",
            NotifyEvent::AgentLocked => "agent.locked",
            NotifyEvent::KillSwitchTripped => "kill_switch.tripped",
        }
    }

    /// The event named `name`.
    pub fn parse(name: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// How a webhook's body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyFormat {
    /// clearance's own JSON: the event, its ledger record and a link.
    Json,
    /// Slack's incoming-webhook message (`text` and `blocks`).
    Slack,
}

/// Where a webhook posts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookUrl {
    /// `url`: the address, as written in the bundle (and so in the
    /// ledger's `bundle.activated` record).
    Literal(String),
    /// `url_env`: the environment variable that holds the address, read
    /// when posting — for an address whose path or query is its secret
    /// (a Slack incoming webhook), which must stay out of the bundle.
    Env(String),
}

/// One webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// Its `id`, else `webhook-` and 12 hex digits of its address: where its
    /// delivery cursor is kept, so reordering the list moves no cursor.
    pub id: String,
    /// Where to POST.
    pub url: WebhookUrl,
    /// What it is told of; no duplicates.
    pub events: Vec<NotifyEvent>,
    /// Its body's format.
    pub format: NotifyFormat,
}

/// `notify:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    /// The console's address as operators reach it, for links (e.g.
    /// `https://clearance.internal`); absent, the gateway's own address.
    pub console_url: Option<String>,
    /// The webhooks, in bundle order.
    pub webhooks: Vec<Webhook>,
}
