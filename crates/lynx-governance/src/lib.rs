//! Governance: the one pipeline every tool call goes through, whatever the transport.
//!
//! Start at `pipeline.rs`: `Pipeline::call` reads top to bottom as the gate list — identity,
//! maintenance, registry, input validation, permission, layer rules, mode gate, execute, audit. The
//! `Tool` trait and the per-layer contexts live in `tool.rs` and `context.rs`; a context can only be
//! built from the evidence the gates return, so a tool cannot run without passing them. This crate does
//! no I/O except through the `Store`, `Kernel` and `Clock` ports of `lynx-model`, and knows no concrete
//! tool, transport or database.

pub mod approvals;
pub mod audit;
pub mod checkpoints;
pub mod context;
pub mod draft_status;
pub mod execution;
pub mod health;
pub mod identity;
pub mod limits;
pub mod maintenance;
pub mod metrics;
pub mod monitoring;
pub mod operations;
pub mod pipeline;
pub mod registry;
pub mod schema;
pub mod services;
pub mod tool;
pub mod webhooks;
mod validation;

pub use context::{DraftCtx, ExecCtx, NewDraft, ReadCtx};
pub use identity::{Authenticated, Credential};
pub use pipeline::{CallOutcome, Pipeline};
pub use registry::{Registry, ToolDefinition};
pub use services::{RuntimeInfo, Services};
pub use tool::{Tool, ToolSpec};
