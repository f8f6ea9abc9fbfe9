//! `lynx_rate_windows`: tenant call quotas shared by every instance. An instance leases calls from the
//! tenant's minute in batches; the row lock (PostgreSQL) or the single writer (SQLite) makes the sum of
//! all leases never exceed the quota.

use lynx_model::{TenantId, store::StoreResult};

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
