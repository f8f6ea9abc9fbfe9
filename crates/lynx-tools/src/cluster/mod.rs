//! The cluster layer: three tools that turn intent into a draft — a stored, previewable proposal for a
//! human to approve. They change nothing else: a `DraftCtx` can only stage one draft.

pub mod docs_draft_create;
pub mod vpm_payment_draft_create;
pub mod workflow_draft_create;
