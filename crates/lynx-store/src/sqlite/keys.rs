//! `lynx_api_keys`: API keys are stored only as a hash of their secret.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId, UserId,
    ids::KeyId,
    store::{ApiKeyRecord, SessionRecord, StoreResult},
};
use sqlx::{SqliteConnection, Row, SqlitePool, sqlite::SqliteRow};

use crate::error::{corrupt, map};

const COLUMNS: &str = "key_id, tenant_id, user_id, label, key_hash, created_at, revoked_at, last_used_at";

fn from_row(r: &SqliteRow) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        key_id: KeyId::parse(r.try_get::<String, _>("key_id").map_err(map)?).map_err(corrupt)?,
        tenant_id: super::tenant(r.try_get("tenant_id").map_err(map)?)?,
        user_id: UserId::parse(r.try_get::<String, _>("user_id").map_err(map)?).map_err(corrupt)?,
        label: r.try_get("label").map_err(map)?,
        key_hash: r.try_get("key_hash").map_err(map)?,
        created_at: r.try_get("created_at").map_err(map)?,
        revoked_at: r.try_get("revoked_at").map_err(map)?,
        last_used_at: r.try_get("last_used_at").map_err(map)?,
    })
}

pub(super) async fn insert(tx: &mut SqliteConnection, k: &ApiKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO lynx_api_keys (key_id, tenant_id, user_id, label, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(k.key_id.as_str())
    .bind(k.tenant_id.as_str())
    .bind(k.user_id.as_str())
    .bind(&k.label)
    .bind(&k.key_hash)
    .bind(k.created_at)
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    Ok(())
}

pub(super) async fn by_hash(pool: &SqlitePool, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_api_keys WHERE key_hash = ?")))
        .bind(hash)
        .fetch_optional(pool)
        .await
        .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool, tenant: Option<&TenantId>) -> StoreResult<Vec<ApiKeyRecord>> {
    let rows = match tenant {
        Some(t) => sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_api_keys WHERE tenant_id = ? ORDER BY created_at, key_id")))
            .bind(t.as_str())
            .fetch_all(pool)
            .await,
        None => sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_api_keys ORDER BY tenant_id, created_at, key_id")))
            .fetch_all(pool)
            .await,
    }
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn revoke(tx: &mut SqliteConnection, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE lynx_api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL")
        .bind(at)
        .bind(key_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn touch(tx: &mut SqliteConnection, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("UPDATE lynx_api_keys SET last_used_at = ? WHERE key_id = ?")
        .bind(at)
        .bind(key_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    Ok(())
}

pub(super) async fn count(pool: &SqlitePool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM lynx_api_keys").fetch_one(pool).await.map_err(map)
}

pub(super) async fn insert_session(tx: &mut SqliteConnection, s: &SessionRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO lynx_sessions (session_hash, tenant_id, user_id, key_id, csrf_token, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.session_hash)
    .bind(s.tenant_id.as_str())
    .bind(s.user_id.as_str())
    .bind(s.key_id.as_str())
    .bind(&s.csrf_token)
    .bind(s.created_at)
    .bind(s.expires_at)
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    Ok(())
}

pub(super) async fn live_session(pool: &SqlitePool, hash: &str, now: DateTime<Utc>) -> StoreResult<Option<SessionRecord>> {
    let row = sqlx::query(
        "SELECT s.session_hash, s.tenant_id, s.user_id, s.key_id, s.csrf_token, s.created_at, s.expires_at \
         FROM lynx_sessions s JOIN lynx_api_keys k ON k.key_id = s.key_id \
         WHERE s.session_hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(SessionRecord {
        session_hash: r.try_get("session_hash").map_err(map)?,
        tenant_id: super::tenant(r.try_get("tenant_id").map_err(map)?)?,
        user_id: UserId::parse(r.try_get::<String, _>("user_id").map_err(map)?).map_err(corrupt)?,
        key_id: KeyId::parse(r.try_get::<String, _>("key_id").map_err(map)?).map_err(corrupt)?,
        csrf_token: r.try_get("csrf_token").map_err(map)?,
        created_at: r.try_get("created_at").map_err(map)?,
        expires_at: r.try_get("expires_at").map_err(map)?,
    }))
}

pub(super) async fn delete_session(tx: &mut SqliteConnection, hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM lynx_sessions WHERE session_hash = ?").bind(hash).execute(&mut *tx).await.map_err(map)?;
    Ok(())
}
