//! Route handlers: `health` (unauthenticated) and `api` (the JSON API).

pub mod api;
pub mod health;
