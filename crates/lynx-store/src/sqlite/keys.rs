//! `lynx_api_keys`: API keys are stored only as a hash of their secret.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId, UserId,
    ids::KeyId,
    store::{ApiKeyRecord, SessionRecord, StoreResult},
};
use rusqlite::{Connection, params};
use sqlx::{Row, SqlitePool, sqlite::SqliteRow};

use super::row::{exec, ts};

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

pub(super) fn insert(conn: &Connection, k: &ApiKeyRecord) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO lynx_api_keys (key_id, tenant_id, user_id, label, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        params![k.key_id.as_str(), k.tenant_id.as_str(), k.user_id.as_str(), k.label, k.key_hash, ts(&k.created_at)],
    )?;
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

pub(super) fn revoke(conn: &Connection, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<bool> {
    let changed = exec(conn, "UPDATE lynx_api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", params![ts(&at), key_id.as_str()])?;
    Ok(changed == 1)
}

pub(super) fn touch(conn: &Connection, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<()> {
    exec(conn, "UPDATE lynx_api_keys SET last_used_at = ? WHERE key_id = ?", params![ts(&at), key_id.as_str()])?;
    Ok(())
}

pub(super) async fn count(pool: &SqlitePool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM lynx_api_keys").fetch_one(pool).await.map_err(map)
}

pub(super) fn insert_session(conn: &Connection, s: &SessionRecord) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO lynx_sessions (session_hash, tenant_id, user_id, key_id, csrf_token, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![s.session_hash, s.tenant_id.as_str(), s.user_id.as_str(), s.key_id.as_str(), s.csrf_token, ts(&s.created_at), ts(&s.expires_at)],
    )?;
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

pub(super) fn delete_session(conn: &Connection, hash: &str) -> StoreResult<()> {
    exec(conn, "DELETE FROM lynx_sessions WHERE session_hash = ?", params![hash])?;
    Ok(())
}
