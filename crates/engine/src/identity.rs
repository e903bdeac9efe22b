//! [`Identity`]: who is calling — an agent bound to one agent id, a harness
//! that records evidence, or a human operator with a [`Role`]. Plain data:
//! what each identity may do is decided by the service, and how it proved
//! who it is (a bearer token) by the faces.

use serde::{Deserialize, Serialize};

/// An operator's role.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Approves and denies pending requests; trips kill switches.
    Approver,
    /// Everything an approver does, and resets kill switches.
    Admin,
}

impl Role {
    /// The role as stored and as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// The role with this name.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Identity {
    /// An agent, bound to one agent id.
    Agent {
        /// The agent id.
        agent: String,
    },
    /// A grader or simulator that records evidence.
    Harness {
        /// Its name.
        name: String,
    },
    /// A human.
    Operator {
        /// Their name.
        name: String,
        /// What they may do.
        role: Role,
    },
}

impl Identity {
    /// The kind as stored: `agent`, `harness` or `operator`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Agent { .. } => "agent",
            Identity::Harness { .. } => "harness",
            Identity::Operator { .. } => "operator",
        }
    }

    /// The agent id, harness name or operator name.
    pub fn subject(&self) -> &str {
        match self {
            Identity::Agent { agent } => agent,
            Identity::Harness { name } | Identity::Operator { name, .. } => name,
        }
    }

    /// The operator's role, for operators.
    pub fn role(&self) -> Option<Role> {
        match self {
            Identity::Operator { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// The identity of this kind, subject and role, if they fit together.
    pub fn from_parts(kind: &str, subject: &str, role: Option<Role>) -> Option<Identity> {
        match (kind, role) {
            ("agent", None) => Some(Identity::Agent {
                agent: subject.to_owned(),
            }),
            ("harness", None) => Some(Identity::Harness {
                name: subject.to_owned(),
            }),
            ("operator", Some(role)) => Some(Identity::Operator {
                name: subject.to_owned(),
                role,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_mismatches_are_refused() {
        for identity in [
            Identity::Agent { agent: "a".into() },
            Identity::Harness { name: "h".into() },
            Identity::Operator {
                name: "o".into(),
                role: Role::Admin,
            },
        ] {
            let back = Identity::from_parts(identity.kind(), identity.subject(), identity.role());
            assert_eq!(back.as_ref(), Some(&identity));
        }
        assert_eq!(Identity::from_parts("operator", "o", None), None);
        assert_eq!(Identity::from_parts("agent", "a", Some(Role::Admin)), None);
        assert_eq!(Identity::from_parts("robot", "r", None), None);
    }
}
