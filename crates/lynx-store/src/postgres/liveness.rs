//! Whether pooled connections can be lent without a check.
//!
//! sqlx pings every connection as it goes back into the pool, and can ping it again before lending it
//! out. That second ping is a round trip before every statement, so Lynx skips it for a connection
//! that was in use a moment ago. A connection can still die while it sits idle: the server restarts,
//! fails over, or an administrator ends its backends. Once a statement fails that way, the other idle
//! connections have likely gone with it. So for a while every connection is pinged before it is lent,
//! and the dead ones are replaced instead of each failing one caller.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use lynx_model::store::StoreError;

/// A connection idle at least this long is pinged before it is lent (HikariCP's "alive bypass window"
/// is the same idea).
pub(super) const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// How long every connection is pinged after one was found lost.
const CHECK_ALL_FOR: Duration = Duration::from_secs(5);

pub(super) struct Liveness {
    started: Instant,
    /// Until when (milliseconds after `started`) every connection is pinged before it is lent.
    check_all_until_ms: AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        Self { started: Instant::now(), check_all_until_ms: AtomicU64::new(0) }
    }
}

impl Liveness {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Whether a connection idle this long is pinged before it is lent.
    pub(super) fn must_check(&self, idle_for: Duration) -> bool {
        idle_for >= CHECK_IF_IDLE_FOR || self.now_ms() < self.check_all_until_ms.load(Ordering::Relaxed)
    }

    /// An error from a pooled connection, as the store reports it; a lost connection is noted first.
    /// Every statement on the pool reports its errors through here.
    pub(super) fn failed(&self, e: sqlx::Error) -> StoreError {
        if connection_lost(&e) {
            let until = self.now_ms() + CHECK_ALL_FOR.as_millis() as u64;
            self.check_all_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        crate::error::map(e)
    }
}

/// The connection itself failed, as opposed to the statement: the socket, or the server ending the
/// session (SQLSTATE class 08, connection exception; 57P01–57P03, shutdown).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_makes_every_connection_checked_for_a_while() {
        let liveness = Liveness::default();
        assert!(!liveness.must_check(Duration::from_millis(5)), "a connection in use a moment ago is lent as it is");
        assert!(liveness.must_check(CHECK_IF_IDLE_FOR));
        let _ = liveness.failed(sqlx::Error::RowNotFound);
        assert!(!liveness.must_check(Duration::from_millis(5)), "a failed statement is not a lost connection");
        let _ = liveness.failed(sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert!(liveness.must_check(Duration::from_millis(5)), "after a lost connection every one is checked");
    }
}
