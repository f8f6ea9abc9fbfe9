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
