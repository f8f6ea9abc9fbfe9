//! Lynx's vocabulary, shared by every other crate.
//!
//! Validated newtypes (parse, don't validate), the enums the runbook names, the stable error codes with
//! the runbook's phrases, and the ports — `Store`, `Kernel`, `Clock` — through which the governance
//! layer reaches the outside world. Nothing here does I/O.

pub mod audit;
pub mod clock;
pub mod draft;
pub mod money;
pub mod error;
pub mod ids;
pub mod kernel;
pub mod params;
pub mod payload;
pub mod principal;
pub mod records;
pub mod store;
pub mod vocab;
pub mod webhook;

pub use error::{ErrorCode, Refusal};
pub use ids::{DraftId, ExecutionId, KeyId, PaymentId, RunId, TenantId, UserId, WorkflowId};
pub use principal::Principal;
pub use vocab::{Layer, Mode, Risk};
