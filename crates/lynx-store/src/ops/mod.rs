//! The storage protocols, written once for both engines: every rule-carrying operation (the approval
//! decision, draft transitions, the execution claim and its completion, request-id replay, rollback,
//! settlement moves, key lookups, the audit append) and every read, as plain async functions over a
//! `&mut dyn Db`. One module per aggregate.

pub(crate) mod audit;
pub(crate) mod drafts;
pub(crate) mod executions;
pub(crate) mod keys;
pub(crate) mod limits;
pub(crate) mod reads;
pub(crate) mod settlements;
pub(crate) mod webhooks;
