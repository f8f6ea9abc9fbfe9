//! Stable error codes and the refusal value every gate, tool and surface speaks.
//!
//! A refusal is an ordinary value, not an exception path: it carries a code that clients can match on,
//! a message that starts with the runbook's phrase where the runbook has one, and a hint that says what
//! to do next. Messages never hold stack traces, secrets or file paths.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::RunId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthenticated,
    UnknownTool,
    InvalidInput,
    PermissionDenied,
    MaintenanceMode,
    KernelUnavailable,
    StorageUnavailable,
    NotFound,
    DraftNotFound,
    WrongDraftType,
    DraftCancelled,
    DraftNotApproved,
    InvalidTransition,
    AlreadyExecuted,
    AlreadySubmitted,
    ApprovalExpired,
    ExecutionInProgress,
    ExecutionFailed,
    ExplicitApprovalRequired,
    IdempotencyConflict,
    VendorInactive,
    PolicyViolation,
    ModuleDisabled,
    SelfApproval,
    RollbackNotPossible,
    RateLimited,
    SpendLimitExceeded,
    // This Lynx lacks the configuration the request needs (a webhook key, say); an operator sets it.
    // (A plain comment: a doc comment here would turn the published enum into a `oneOf`.)
    NotConfigured,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::UnknownTool => "UNKNOWN_TOOL",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::MaintenanceMode => "MAINTENANCE_MODE",
            ErrorCode::KernelUnavailable => "KERNEL_UNAVAILABLE",
            ErrorCode::StorageUnavailable => "STORAGE_UNAVAILABLE",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::DraftNotFound => "DRAFT_NOT_FOUND",
            ErrorCode::WrongDraftType => "WRONG_DRAFT_TYPE",
            ErrorCode::DraftCancelled => "DRAFT_CANCELLED",
            ErrorCode::DraftNotApproved => "DRAFT_NOT_APPROVED",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::AlreadyExecuted => "ALREADY_EXECUTED",
            ErrorCode::AlreadySubmitted => "ALREADY_SUBMITTED",
            ErrorCode::ApprovalExpired => "APPROVAL_EXPIRED",
            ErrorCode::ExecutionInProgress => "EXECUTION_IN_PROGRESS",
            ErrorCode::ExecutionFailed => "EXECUTION_FAILED",
            ErrorCode::ExplicitApprovalRequired => "EXPLICIT_APPROVAL_REQUIRED",
            ErrorCode::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            ErrorCode::VendorInactive => "VENDOR_INACTIVE",
            ErrorCode::PolicyViolation => "POLICY_VIOLATION",
            ErrorCode::ModuleDisabled => "MODULE_DISABLED",
            ErrorCode::SelfApproval => "SELF_APPROVAL",
            ErrorCode::RollbackNotPossible => "ROLLBACK_NOT_POSSIBLE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::SpendLimitExceeded => "SPEND_LIMIT_EXCEEDED",
            ErrorCode::NotConfigured => "NOT_CONFIGURED",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The HTTP status that fits the code on the JSON API.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied | ErrorCode::ModuleDisabled => 403,
            ErrorCode::SelfApproval => 403,
            ErrorCode::UnknownTool | ErrorCode::NotFound | ErrorCode::DraftNotFound => 404,
            ErrorCode::InvalidInput | ErrorCode::WrongDraftType => 400,
            ErrorCode::DraftCancelled
            | ErrorCode::DraftNotApproved
            | ErrorCode::InvalidTransition
            | ErrorCode::AlreadyExecuted
            | ErrorCode::AlreadySubmitted
            | ErrorCode::ApprovalExpired
            | ErrorCode::ExecutionInProgress
            | ErrorCode::ExecutionFailed
            | ErrorCode::IdempotencyConflict
            | ErrorCode::RollbackNotPossible => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::ExplicitApprovalRequired | ErrorCode::VendorInactive | ErrorCode::PolicyViolation | ErrorCode::SpendLimitExceeded => 422,
            ErrorCode::MaintenanceMode | ErrorCode::KernelUnavailable | ErrorCode::StorageUnavailable | ErrorCode::NotConfigured => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal or failure: what blocked the call, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub hint: String,
    /// When a retry can succeed (`RATE_LIMITED`): HTTP's `Retry-After`, and `retry_after_secs` on MCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { code, message: message.into(), hint: hint.into(), retry_after_secs: None }
    }

    pub fn retry_after(self, secs: u64) -> Self {
        Self { retry_after_secs: Some(secs), ..self }
    }

    /// Bad input: `field` and the rule it broke.
    pub fn invalid_input(field: &str, rule: impl fmt::Display) -> Self {
        let message = if field.is_empty() || field == "." {
            format!("invalid input: {rule}")
        } else {
            format!("{field}: {rule}")
        };
        Self::new(ErrorCode::InvalidInput, message, "Correct the named field and call again; nothing was changed.")
    }

    pub fn kernel_unavailable(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::KernelUnavailable,
            format!("Kernel API unreachable: {detail}"),
            "Check KERNEL_API_URL and that the Kernel service is running, then retry; permission checks are denied while the Kernel cannot answer.",
        )
    }

    pub fn storage_unavailable(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::StorageUnavailable,
            format!("Storage unavailable: {detail}"),
            "Check LYNX_DATABASE_URL and that the database is reachable, then retry.",
        )
    }

    pub fn internal(context: &str) -> Self {
        Self::new(
            ErrorCode::Internal,
            format!("internal error while {context}"),
            "Retry; if it persists, look up the run_id in the server log and audit trail.",
        )
    }
}

// A refusal as a client receives it: the `error` object of a refused tool call's structured content
// (SPEC §5), and the `data.error` of a JSON-RPC error on `/mcp`. One type, so the published schema and
// the wire cannot differ. (The doc comment below is published in every output schema.)
/// Why the call was refused, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// The stable code to match on.
    pub code: ErrorCode,
    /// What blocked the call; starts with the runbook's phrase where it has one.
    pub message: String,
    /// The audited run; `null` when the caller could not be identified (then nothing was audited) or the
    /// call was rate-limited (refusals are audited together, one row per key and round).
    pub run_id: Option<RunId>,
    /// What to do next.
    pub hint: String,
    /// Seconds to wait before a retry can succeed; only on `RATE_LIMITED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ErrorBody {
    pub fn new(refusal: &Refusal, run_id: Option<RunId>) -> Self {
        Self { code: refusal.code, message: refusal.message.clone(), run_id, hint: refusal.hint.clone(), retry_after_secs: refusal.retry_after_secs }
    }
}

/// The structured content of a refused tool call: `{"error": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

impl ErrorCode {
    /// Whether a call that ended with this code failed — something broke: storage, the Kernel, Lynx
    /// itself — rather than being refused by a rule. The audit trail records a failure as `FAILED` and a
    /// refusal as `DENIED`, wherever in the pipeline it happened; the monitoring's failure rate counts
    /// the former.
    pub fn is_failure(self) -> bool {
        matches!(self, ErrorCode::Internal | ErrorCode::StorageUnavailable | ErrorCode::KernelUnavailable)
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(m) => Refusal::storage_unavailable(m),
            StoreError::Conflict(m) => Refusal::new(ErrorCode::Internal, format!("storage conflict: {m}"), "Retry the call."),
            StoreError::Corrupt(m) => Refusal::new(ErrorCode::Internal, format!("stored data unreadable: {m}"), "Report this to the operator."),
        }
    }
}

impl From<crate::kernel::KernelError> for Refusal {
    fn from(e: crate::kernel::KernelError) -> Self {
        use crate::kernel::KernelError;
        match e {
            KernelError::NotFound(m) => Refusal::new(ErrorCode::NotFound, m, "Check the identifier against the Kernel's data."),
            KernelError::Unavailable(m) => Refusal::kernel_unavailable(m),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}
