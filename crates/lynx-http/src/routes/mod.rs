//! Route handlers: `health` (unauthenticated), `api` (status, tools, audit), `drafts` (the approval
//! surface) and `operations` (executions and settlements).

pub mod api;
mod body;
pub mod drafts;
pub mod export;
pub mod health;
pub mod metrics;
pub mod operations;
mod query;
