//! Connections kept between statements, instead of going back into sqlx's pool after each one.
//!
//! sqlx pings a connection as it goes back into its pool — a round trip (`Sync` and its answer),
//! whatever the connection just did — and every autocommit statement, transaction and audit batch
//! takes a connection and gives it back: one extra round trip each, some 13 per lifecycle and one per
//! domain read. So the engine keeps a connection that ended well on a stack of its own and lends the
//! most recently used one next, unpinged.
//!
//! sqlx's pool stays in charge of everything else, and nothing here ever abandons one of its futures:
//! a caller that finds the stack empty waits on sqlx's `acquire` alone — dropping that future while it
//! pings or opens a connection would make sqlx close the connection — and while anyone waits there, a
//! connection that ends well goes back to sqlx (through its ping), which hands it on. A connection whose
//! user did not say it ended well (a statement failed; the caller stopped waiting in the middle of one)
//! also goes back to sqlx, whose ping reads whatever it still owed. One that sat idle, and every one
//! for a while after a connection was found lost, is pinged before it is lent (`liveness.rs`), as
//! sqlx's own are. And every few minutes each one goes back through sqlx's pool once, which closes it
//! there if it has outlived sqlx's `max_lifetime`.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use sqlx::{PgConnection, PgPool, Postgres, pool::PoolConnection};

use super::liveness::Liveness;

/// How long a connection is kept before it goes back through sqlx's pool once, so that sqlx's own rules
/// for a connection's age (`max_lifetime`) still apply to it.
const BACK_TO_THE_POOL_AFTER: Duration = Duration::from_secs(300);

pub(super) struct Lender {
    pool: PgPool,
    kept: Mutex<Kept>,
    back_after: Duration,
}

#[derive(Default)]
struct Kept {
    /// Connections that ended well, the most recent last.
    idle: Vec<KeptConnection>,
    /// Callers waiting on sqlx's pool. While there are any, the stack stays empty: a connection that
    /// ends well goes to sqlx, which hands it to one of them.
    waiting: usize,
}

struct KeptConnection {
    conn: PoolConnection<Postgres>,
    /// When it came back.
    since: Instant,
    /// When sqlx's pool last lent it.
    from_pool: Instant,
}

/// A lent connection. Unless `ended_well` is called, dropping it returns the connection to sqlx's pool.
pub(super) struct Lent<'a> {
    conn: Option<PoolConnection<Postgres>>,
    from_pool: Instant,
    lender: &'a Lender,
    well: bool,
}

/// One caller's place among those waiting on sqlx's pool, given up however the wait ends.
struct Waiting<'a>(&'a Lender);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.kept().waiting -= 1;
    }
}

impl Lender {
    pub(super) fn new(pool: PgPool) -> Self {
        Self::keeping_for(pool, BACK_TO_THE_POOL_AFTER)
    }

    pub(super) fn keeping_for(pool: PgPool, back_after: Duration) -> Self {
        Self { pool, kept: Mutex::new(Kept::default()), back_after }
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many connections are kept now.
    #[cfg(test)]
    pub(super) fn kept_now(&self) -> usize {
        self.kept().idle.len()
    }

    /// The most recently kept connection, or else a place among the callers waiting on sqlx's pool
    /// (under one lock, so that a connection coming back in between is not kept from them).
    fn take_or_wait(&self) -> Result<KeptConnection, Waiting<'_>> {
        let mut kept = self.kept();
        kept.idle.pop().ok_or_else(|| {
            kept.waiting += 1;
            Waiting(self)
        })
    }

    /// A connection: the most recently kept one, else one from sqlx's pool (which waits up to its
    /// acquire timeout when all are lent).
    pub(super) async fn lend(&self, liveness: &Liveness) -> Result<Lent<'_>, sqlx::Error> {
        loop {
            match self.take_or_wait() {
                Ok(KeptConnection { mut conn, since, from_pool }) => {
                    if liveness.must_check(since.elapsed()) && sqlx::Connection::ping(conn.as_mut()).await.is_err() {
                        // Closed, not pooled: sqlx would only ping it again.
                        conn.close_on_drop();
                        continue;
                    }
                    return Ok(Lent { conn: Some(conn), from_pool, lender: self, well: false });
                }
                Err(waiting) => {
                    let conn = self.pool.acquire().await;
                    drop(waiting);
                    return Ok(Lent { conn: Some(conn?), from_pool: Instant::now(), lender: self, well: false });
                }
            }
        }
    }
}

impl Lent<'_> {
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        self.pooled().as_mut()
    }

    pub(super) fn pooled(&mut self) -> &mut PoolConnection<Postgres> {
        self.conn.as_mut().expect("a lent connection is held until dropped")
    }

    /// What was asked of the connection ended well: it is kept for the next caller, unless callers
    /// are waiting on sqlx's pool or it has been kept for `BACK_TO_THE_POOL_AFTER`.
    pub(super) fn ended_well(mut self) {
        self.well = true;
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.well && self.from_pool.elapsed() < self.lender.back_after {
            let mut kept = self.lender.kept();
            if kept.waiting == 0 {
                kept.idle.push(KeptConnection { conn, since: Instant::now(), from_pool: self.from_pool });
                return;
            }
        }
        // Back to sqlx's pool as it drops: pinged there, closed if broken, handed to a waiting caller.
        drop(conn);
    }
}
