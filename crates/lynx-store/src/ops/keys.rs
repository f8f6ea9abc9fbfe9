//! `lynx_api_keys` and `lynx_sessions`: keys stored only as a hash of their secret; dashboard sessions
//! that end when they expire or when their key is revoked.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId, UserId,
    ids::KeyId,
    store::{ApiKeyRecord, SessionRecord, StoreResult},
};

use crate::{
    db::{self, Db},
    error::corrupt,
    row::Row,
    sql::Query,
};

const COLUMNS: &str = "key_id, tenant_id, user_id, label, key_hash, created_at, revoked_at, last_used_at";

fn key(mut r: Row) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        key_id: KeyId::parse(r.text("key_id")?).map_err(corrupt)?,
        tenant_id: r.tenant("tenant_id")?,
        user_id: UserId::parse(r.text("user_id")?).map_err(corrupt)?,
        label: r.text("label")?,
        key_hash: r.text("key_hash")?,
        created_at: r.time("created_at")?,
        revoked_at: r.opt_time("revoked_at")?,
        last_used_at: r.opt_time("last_used_at")?,
    })
}

pub(crate) async fn insert(db: &mut dyn Db, k: &ApiKeyRecord) -> StoreResult<()> {
    let q = Query::new("INSERT INTO lynx_api_keys (key_id, tenant_id, user_id, label, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(k.key_id.as_str())
        .bind(&k.tenant_id)
        .bind(k.user_id.as_str())
        .bind(&k.label)
        .bind(&k.key_hash)
        .bind(k.created_at);
    db::execute(db, q).await.map(drop)
}

pub(crate) async fn by_hash(db: &mut dyn Db, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_api_keys WHERE key_hash = $1")).bind(hash);
    db::fetch_one_as(db, q, key).await
}

pub(crate) async fn list(db: &mut dyn Db, tenant: Option<&TenantId>) -> StoreResult<Vec<ApiKeyRecord>> {
    let q = match tenant {
        Some(t) => Query::new(format!("SELECT {COLUMNS} FROM lynx_api_keys WHERE tenant_id = $1 ORDER BY created_at, key_id")).bind(t),
        None => Query::new(format!("SELECT {COLUMNS} FROM lynx_api_keys ORDER BY tenant_id, created_at, key_id")),
    };
    db::fetch_all(db, q, key).await
}

/// Whether an unrevoked key had that id.
pub(crate) async fn revoke(db: &mut dyn Db, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<bool> {
    let q = Query::new("UPDATE lynx_api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL").bind(at).bind(key_id.as_str());
    Ok(db::execute(db, q).await? == 1)
}

pub(crate) async fn touch(db: &mut dyn Db, key_id: &KeyId, at: DateTime<Utc>) -> StoreResult<()> {
    let q = Query::new("UPDATE lynx_api_keys SET last_used_at = $1 WHERE key_id = $2").bind(at).bind(key_id.as_str());
    db::execute(db, q).await.map(drop)
}

pub(crate) async fn count(db: &mut dyn Db) -> StoreResult<i64> {
    db::count(db, Query::new("SELECT COUNT(*) FROM lynx_api_keys")).await
}

pub(crate) async fn insert_session(db: &mut dyn Db, s: &SessionRecord) -> StoreResult<()> {
    let q = Query::new(
        "INSERT INTO lynx_sessions (session_hash, tenant_id, user_id, key_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.session_hash)
    .bind(&s.tenant_id)
    .bind(s.user_id.as_str())
    .bind(s.key_id.as_str())
    .bind(&s.csrf_token)
    .bind(s.created_at)
    .bind(s.expires_at);
    db::execute(db, q).await.map(drop)
}

pub(crate) async fn live_session(db: &mut dyn Db, hash: &str, now: DateTime<Utc>) -> StoreResult<Option<SessionRecord>> {
    let q = Query::new(
        "SELECT s.session_hash, s.tenant_id, s.user_id, s.key_id, s.csrf_token, s.created_at, s.expires_at \
         FROM lynx_sessions s JOIN lynx_api_keys k ON k.key_id = s.key_id \
         WHERE s.session_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL",
    )
    .bind(hash)
    .bind(now);
    db::fetch_one_as(db, q, |mut r| {
        Ok(SessionRecord {
            session_hash: r.text("session_hash")?,
            tenant_id: r.tenant("tenant_id")?,
            user_id: UserId::parse(r.text("user_id")?).map_err(corrupt)?,
            key_id: KeyId::parse(r.text("key_id")?).map_err(corrupt)?,
            csrf_token: r.text("csrf_token")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
        })
    })
    .await
}

pub(crate) async fn delete_session(db: &mut dyn Db, hash: &str) -> StoreResult<()> {
    db::execute(db, Query::new("DELETE FROM lynx_sessions WHERE session_hash = $1").bind(hash)).await.map(drop)
}
