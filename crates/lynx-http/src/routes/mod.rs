//! Route handlers: `health` (unauthenticated), `api` (status, tools, audit), `drafts` (the approval
//! surface) `operations` (executions and settlements) and `webhooks` (notification subscriptions).

pub mod api;
mod body;
pub mod drafts;
pub mod export;
pub mod health;
pub mod metrics;
pub mod operations;
mod query;
pub mod webhooks;
