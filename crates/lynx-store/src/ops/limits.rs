//! Limits that must hold across instances, enforced by the database. `lynx_rate_windows`: tenant call
//! quotas — an instance leases calls from the tenant's minute in batches; the row lock (PostgreSQL) or
//! the single writer (SQLite) makes the sum of all leases never exceed the quota. `lynx_spend_totals`:
//! daily spend per agent and per tenant — a conditional increment under the counter's row lock, in the
//! transaction of the write that spends, so no two writes pass a limit together.

use lynx_model::{
    TenantId,
    records::{SpendCap, SpendSubject, SpendTotals},
    store::StoreResult,
};
use rust_decimal::{Decimal, prelude::ToPrimitive};

use crate::{
    db::{self, Db},
    sql::Query,
};

/// Leases up to `want` calls of `tenant`'s `minute` whose quota is `quota`; returns how many were granted
/// (0 when the minute's quota is spent).
pub(crate) async fn lease(db: &mut dyn Db, tenant: &TenantId, minute: i64, want: u32, quota: u32) -> StoreResult<u32> {
    db.execute(
        &Query::new("INSERT INTO lynx_rate_windows (tenant_id, window_minute, granted) VALUES ($1, $2, 0) ON CONFLICT (tenant_id, window_minute) DO NOTHING")
            .bind(tenant)
            .bind(minute),
    )
    .await?;
    let granted = db::count(
        db,
        Query::new("SELECT granted FROM lynx_rate_windows WHERE tenant_id = $1 AND window_minute = $2/*pg  FOR UPDATE*/").bind(tenant).bind(minute),
    )
    .await?;
    let grant = (i64::from(quota) - granted).clamp(0, i64::from(want));
    if grant > 0 {
        db.execute(
            &Query::new("UPDATE lynx_rate_windows SET granted = granted + $3 WHERE tenant_id = $1 AND window_minute = $2")
                .bind(tenant)
                .bind(minute)
                .bind(grant),
        )
        .await?;
    }
    // Minutes over an hour old are no longer read by anyone.
    db.execute(&Query::new("DELETE FROM lynx_rate_windows WHERE tenant_id = $1 AND window_minute < $2").bind(tenant).bind(minute - 60)).await?;
    Ok(grant as u32)
}

/// Money in the counters is kept in hundredths (an `Amount` has at most two decimals), so both engines
/// add integers exactly — SQLite would add decimal text as floating point.
fn hundredths(d: Decimal) -> StoreResult<i64> {
    (d * Decimal::ONE_HUNDRED).trunc().to_i64().ok_or_else(|| crate::error::corrupt(format!("amount {d} out of range")))
}

fn subject(s: &SpendSubject) -> String {
    match s {
        SpendSubject::Agent(user) => format!("agent:{user}"),
        SpendSubject::Tenant => "tenant".into(),
    }
}

/// Counts `cap.amount` against the day's total if it stays within `cap.cap`; otherwise counts nothing
/// and returns the totals as they stand.
pub(crate) async fn spend(db: &mut dyn Db, tenant: &TenantId, cap: &SpendCap) -> StoreResult<Result<(), SpendTotals>> {
    let (who, day, currency) = (subject(&cap.subject), cap.day.to_string(), cap.currency.as_str());
    db.execute(
        &Query::new(
            "INSERT INTO lynx_spend_totals (tenant_id, subject, day, currency, total_hundredths) VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (tenant_id, subject, day, currency) DO NOTHING",
        )
        .bind(tenant)
        .bind(who.as_str())
        .bind(day.as_str())
        .bind(currency),
    )
    .await?;
    // PostgreSQL re-checks the WHERE on the row version it waited for, so a concurrent spender that
    // committed first is seen here.
    let counted = db
        .execute(
            &Query::new(
                "UPDATE lynx_spend_totals SET total_hundredths = total_hundredths + $5 \
                 WHERE tenant_id = $1 AND subject = $2 AND day = $3 AND currency = $4 AND total_hundredths + $5 <= $6",
            )
            .bind(tenant)
            .bind(who.as_str())
            .bind(day.as_str())
            .bind(currency)
            .bind(hundredths(cap.amount)?)
            .bind(hundredths(cap.cap)?),
        )
        .await?;
    if counted == 1 {
        return Ok(Ok(()));
    }
    let spent = db::count(
        db,
        Query::new("SELECT total_hundredths FROM lynx_spend_totals WHERE tenant_id = $1 AND subject = $2 AND day = $3 AND currency = $4")
            .bind(tenant)
            .bind(who.as_str())
            .bind(day.as_str())
            .bind(currency),
    )
    .await?;
    Ok(Err(SpendTotals { spent: Decimal::new(spent, 2), cap: cap.cap }))
}
