//! The enums of the runbook and the spec: tool layers, risk levels and operating modes.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// The three tool layers. A tool's layer decides what its context may do and its MCP annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Read-only answers from the Kernel and Lynx's tables.
    Domain,
    /// Draft creation only.
    Cluster,
    /// Execution of approved drafts.
    Cell,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Domain => "domain",
            Layer::Cluster => "cluster",
            Layer::Cell => "cell",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `LYNX_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Dev,
    Staging,
    Prod,
}

impl Mode {
    pub const ALLOWED: &'static str = "dev, staging, prod";

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dev => "dev",
            Mode::Staging => "staging",
            Mode::Prod => "prod",
        }
    }
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "dev" => Ok(Mode::Dev),
            "staging" => Ok(Mode::Staging),
            "prod" => Ok(Mode::Prod),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The closing status of a tool call or execution, stored as the runbook writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    Started,
    Succeeded,
    Failed,
    Denied,
}

impl RunStatus {
    pub const ALL: [RunStatus; 4] = [RunStatus::Started, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Started => "STARTED",
            RunStatus::Succeeded => "SUCCEEDED",
            RunStatus::Failed => "FAILED",
            RunStatus::Denied => "DENIED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a payment stands. Created `pending_settlement` (no money moves at execution); its settlement
/// intent settles or fails it; a rollback reverses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    PendingSettlement,
    Settled,
    Reversed,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 4] = [Self::PendingSettlement, Self::Settled, Self::Reversed, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingSettlement => "pending_settlement",
            Self::Settled => "settled",
            Self::Reversed => "reversed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A settlement intent's status: `queued → processing → completed | failed`, or `cancelled` when its
/// payment is reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettlementStatus {
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl SettlementStatus {
    pub const ALL: [SettlementStatus; 5] = [Self::Queued, Self::Processing, Self::Completed, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The statuses an operator may move an intent to from this one.
    pub fn next(self) -> &'static [SettlementStatus] {
        match self {
            Self::Queued => &[Self::Processing, Self::Failed],
            Self::Processing => &[Self::Completed, Self::Failed],
            _ => &[],
        }
    }

    /// What reaching this status does to the payment: a completed settlement settles it, a failed one
    /// fails it.
    pub fn payment_status(self) -> Option<PaymentStatus> {
        match self {
            Self::Completed => Some(PaymentStatus::Settled),
            Self::Failed => Some(PaymentStatus::Failed),
            _ => None,
        }
    }

    /// Whether the payment may still be reversed (no money has moved, or the transfer failed).
    pub fn reversible(self) -> bool {
        matches!(self, Self::Queued | Self::Failed)
    }
}

impl fmt::Display for SettlementStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn settlements_move_forward_only() {
        for s in SettlementStatus::ALL {
            assert_eq!(SettlementStatus::parse(s.as_str()), Some(s));
            assert!(!s.next().contains(&SettlementStatus::Queued), "{s}: never back to queued");
        }
        assert!(SettlementStatus::Completed.next().is_empty() && SettlementStatus::Cancelled.next().is_empty());
        assert_eq!(SettlementStatus::Completed.payment_status(), Some(PaymentStatus::Settled));
        assert!(!SettlementStatus::Processing.reversible() && SettlementStatus::Queued.reversible());
        for p in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(p.as_str()), Some(p));
        }
    }
}
