//! Drafts and their state machine (SPEC §3). A draft's payload never changes after creation; only its
//! status moves, along the transitions below, each recorded with who and when.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DraftType {
    Docs,
    Workflow,
    VpmPayment,
}

impl DraftType {
    pub const ALL: [DraftType; 3] = [DraftType::Docs, DraftType::Workflow, DraftType::VpmPayment];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftType::Docs => "docs",
            DraftType::Workflow => "workflow",
            DraftType::VpmPayment => "vpm_payment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for DraftType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stored and shown in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DraftStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Cancelled,
    Published,
    Executed,
}

impl DraftStatus {
    pub const ALL: [DraftStatus; 7] = [
        DraftStatus::Draft,
        DraftStatus::Submitted,
        DraftStatus::Approved,
        DraftStatus::Rejected,
        DraftStatus::Cancelled,
        DraftStatus::Published,
        DraftStatus::Executed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftStatus::Draft => "DRAFT",
            DraftStatus::Submitted => "SUBMITTED",
            DraftStatus::Approved => "APPROVED",
            DraftStatus::Rejected => "REJECTED",
            DraftStatus::Cancelled => "CANCELLED",
            DraftStatus::Published => "PUBLISHED",
            DraftStatus::Executed => "EXECUTED",
        }
    }

    /// As the runbook's messages write it: `Draft is not approved (status: draft)`.
    pub fn lower(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether a draft in this status has had its effect applied (exactly once).
    pub fn is_done(self) -> bool {
        matches!(self, DraftStatus::Published | DraftStatus::Executed)
    }
}

impl fmt::Display for DraftStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ways a draft's status may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Submit,
    Approve,
    Reject,
    Cancel,
    Publish,
    Execute,
    /// Emergency `lynx drafts reset --force`.
    Reset,
    /// Undoing a submit.
    Unsubmit,
}

impl Transition {
    /// The statuses the transition starts from, and where it leads.
    pub fn rule(self) -> (&'static [DraftStatus], DraftStatus) {
        use DraftStatus::*;
        match self {
            Transition::Submit => (&[Draft], Submitted),
            Transition::Approve => (&[Submitted], Approved),
            Transition::Reject => (&[Submitted], Rejected),
            Transition::Cancel => (&[Draft, Submitted], Cancelled),
            Transition::Publish => (&[Approved], Published),
            Transition::Execute => (&[Approved], Executed),
            Transition::Reset => (&[Draft, Submitted, Approved, Rejected, Cancelled, Published, Executed], Draft),
            Transition::Unsubmit => (&[Submitted], Draft),
        }
    }

    pub fn allowed_from(self, status: DraftStatus) -> bool {
        self.rule().0.contains(&status)
    }

    pub fn target(self) -> DraftStatus {
        self.rule().1
    }

    pub fn verb(self) -> &'static str {
        match self {
            Transition::Submit => "submitted",
            Transition::Approve => "approved",
            Transition::Reject => "rejected",
            Transition::Cancel => "cancelled",
            Transition::Publish => "published",
            Transition::Execute => "executed",
            Transition::Reset => "reset",
            Transition::Unsubmit => "returned to DRAFT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DraftStatus::*, *};

    #[test]
    fn the_state_machine_is_the_specs() {
        let allowed = |t: Transition| DraftStatus::ALL.into_iter().filter(|s| t.allowed_from(*s)).collect::<Vec<_>>();
        assert_eq!(allowed(Transition::Submit), vec![Draft]);
        assert_eq!(allowed(Transition::Approve), vec![Submitted]);
        assert_eq!(allowed(Transition::Reject), vec![Submitted]);
        assert_eq!(allowed(Transition::Cancel), vec![Draft, Submitted]);
        assert_eq!(allowed(Transition::Publish), vec![Approved]);
        assert_eq!(allowed(Transition::Execute), vec![Approved]);
        assert_eq!(allowed(Transition::Reset).len(), 7);
        assert_eq!(Transition::Execute.target(), Executed);
        assert!(Published.is_done() && Executed.is_done() && !Approved.is_done());
        assert_eq!(Submitted.lower(), "submitted");
        assert_eq!(DraftStatus::parse("approved"), Some(Approved));
        assert_eq!(DraftType::parse("vpm_payment"), Some(DraftType::VpmPayment));
    }
}
