//! Time as a port, so the rules that depend on "now" can be tested without sleeping. UTC everywhere.

use chrono::{DateTime, SubsecRound, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock, truncated to microseconds so a stored timestamp reads back equal on every engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}
