//! Identity: API keys (created, hashed, revoked), and turning a credential into a principal.
//!
//! A token names a tenant and a user; the Kernel supplies the role and scopes. Keys are 256-bit random
//! secrets, so a single SHA-256 is a sound hash for them (no password stretching is needed) and lookups
//! stay one indexed query.

use chrono::{DateTime, Duration, Utc};
use lynx_model::{
    ErrorCode, Mode, Principal, Refusal, TenantId, UserId,
    ids::KeyId,
    kernel::KernelError,
    store::ApiKeyRecord,
    vocab::RunStatus,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{audit, services::Services};

/// How a caller proves who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A bearer token or `LYNX_API_KEY` (never printed: `Debug` shows it redacted).
    ApiKey(SecretString),
    /// A caller the HTTP surface already authenticated with `authenticate`.
    Verified(Authenticated),
    /// `--tenant/--user` on `lynx mcp`, honoured in `dev` mode only.
    DevFlags { tenant: TenantId, user: UserId },
}

/// A tenant and user vouched for by a valid key (or by dev flags in dev mode). Only this module makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    tenant_id: TenantId,
    user_id: UserId,
    key_id: Option<KeyId>,
}

impl Authenticated {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }
    pub fn key_id(&self) -> Option<&KeyId> {
        self.key_id.as_ref()
    }
}

pub fn unauthenticated(why: &str) -> Refusal {
    Refusal::new(
        ErrorCode::Unauthenticated,
        format!("Unauthenticated: {why}"),
        "Send a valid API key (HTTP: Authorization: Bearer <key>; stdio: LYNX_API_KEY). Operators create keys with `lynx keys create --tenant T --user U`.",
    )
}

/// A human action outside the tools (moving a settlement, managing webhooks) needs the Kernel to
/// allow `action` on `resource_type` for the caller; `hint` says who may.
pub async fn require_permission(services: &Services, who: &Authenticated, action: &str, resource_type: &str, hint: &str) -> Result<(), Refusal> {
    let request = lynx_model::kernel::PermissionRequest {
        user_id: who.user_id.clone(),
        tenant_id: who.tenant_id.clone(),
        action: action.into(),
        resource_type: resource_type.into(),
    };
    let decision = services.kernel.check_permission(&request).await?;
    if decision.allowed {
        Ok(())
    } else {
        Err(Refusal::new(ErrorCode::PermissionDenied, format!("Permission denied: {}", decision.reason), hint))
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Recently verified keys, so a busy agent's every call does not read its key from the database.
/// Only valid keys are kept, each for the configured time; revocation takes effect when it expires.
#[derive(Default)]
pub struct KeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (ApiKeyRecord, std::time::Instant)>>,
}

/// Beyond this many entries the cache starts over (a bound on memory, not a tuning knob).
const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    fn get(&self, hash: &str, ttl: std::time::Duration) -> Option<ApiKeyRecord> {
        if ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries.get(hash).filter(|(_, at)| at.elapsed() < ttl).map(|(k, _)| k.clone())
    }

    fn put(&self, hash: String, key: &ApiKeyRecord, ttl: std::time::Duration) {
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= KEY_CACHE_MAX {
                entries.clear();
            }
            // insert, not entry().or_insert: an expired entry must be replaced, or it would never hit again.
            entries.insert(hash, (key.clone(), std::time::Instant::now()));
        }
    }
}

/// Resolves a credential to an authenticated tenant and user; anything else is `UNAUTHENTICATED`.
pub async fn authenticate(services: &Services, credential: &Credential) -> Result<Authenticated, Refusal> {
    match credential {
        Credential::Verified(a) => Ok(a.clone()),
        Credential::DevFlags { tenant, user } => {
            if services.runtime.mode != Mode::Dev {
                return Err(unauthenticated("--tenant/--user are accepted in dev mode only"));
            }
            Ok(Authenticated { tenant_id: tenant.clone(), user_id: user.clone(), key_id: None })
        }
        Credential::ApiKey(token) => {
            let token = token.expose_secret().trim();
            if token.is_empty() {
                return Err(unauthenticated("no API key was presented"));
            }
            if token.len() > 256 {
                return Err(unauthenticated("the API key is not valid"));
            }
            let hash = hash_token(token);
            let ttl = services.runtime.key_cache_ttl;
            let (key, cached) = match services.keys.get(&hash, ttl) {
                Some(key) => (Some(key), true),
                None => (services.store.api_key_by_hash(&hash).await?, false),
            };
            let Some(key) = key else {
                return Err(unauthenticated("the API key is not valid"));
            };
            if key.revoked_at.is_some() {
                return Err(unauthenticated("the API key has been revoked"));
            }
            if !cached {
                let now = services.clock.now();
                // Recording every use would add a write to every call; a minute's precision is enough.
                if key.last_used_at.is_none_or(|t| now - t > Duration::seconds(60)) {
                    let _ = services.store.touch_api_key(&key.key_id, now).await;
                }
                services.keys.put(hash, &key, ttl);
            }
            Ok(Authenticated { tenant_id: key.tenant_id, user_id: key.user_id, key_id: Some(key.key_id) })
        }
    }
}

/// Role and scopes come from the Kernel's user record, never from the caller.
pub async fn principal(services: &Services, who: &Authenticated) -> Result<Principal, Refusal> {
    kernel_principal(services, &who.tenant_id, &who.user_id).await
}

/// A key-authenticated caller with no role or scopes, for the one tool that serves during a Kernel
/// outage (`ToolSpec::serves_during_kernel_outage`).
pub fn without_kernel(who: &Authenticated) -> Principal {
    Principal { tenant_id: who.tenant_id.clone(), user_id: who.user_id.clone(), role: String::new(), scopes: Vec::new() }
}

/// The principal the Kernel knows for a tenant's user: for operator commands that name the user.
pub async fn kernel_principal(services: &Services, tenant: &TenantId, user: &UserId) -> Result<Principal, Refusal> {
    let who = Authenticated { tenant_id: tenant.clone(), user_id: user.clone(), key_id: None };
    match services.kernel.user(&who.tenant_id, &who.user_id).await {
        Ok(user) if user.active => Ok(Principal {
            tenant_id: who.tenant_id.clone(),
            user_id: who.user_id.clone(),
            role: user.role,
            scopes: user.scopes,
        }),
        Ok(_) => Err(Refusal::new(
            ErrorCode::PermissionDenied,
            format!("Permission denied: user {} is inactive in the Kernel", who.user_id),
            "Ask a tenant administrator to reactivate the user, or use another user's key.",
        )),
        Err(KernelError::NotFound(m)) => Err(Refusal::new(
            ErrorCode::PermissionDenied,
            format!("Permission denied: {m}"),
            "The key's user must exist in the Kernel; revoke this key and create one for a Kernel user.",
        )),
        Err(KernelError::Unavailable(m)) => Err(Refusal::kernel_unavailable(m)),
    }
}

/// A new key's secret: shown once, stored only as its hash.
pub struct NewKey {
    pub record: ApiKeyRecord,
    pub secret: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

/// Creates a key for a user the Kernel knows, and audits it in the tenant's chain.
pub async fn create_key(services: &Services, tenant: &TenantId, user: &UserId, label: &str, actor: &str) -> Result<NewKey, Refusal> {
    // A key for a user the Kernel marks inactive or does not list would only ever be refused.
    kernel_principal(services, tenant, user).await.map_err(|r| match r.code {
        ErrorCode::PermissionDenied => Refusal { hint: "Create keys only for active users the Kernel lists for that tenant.".into(), ..r },
        _ => r,
    })?;
    let now = services.clock.now();
    let key_id = KeyId::parse(format!("key_{}", random_hex(8))).map_err(|_| Refusal::internal("naming the key"))?;
    let secret = format!("lynx_{}", random_hex(32));
    let record = ApiKeyRecord {
        key_id,
        tenant_id: tenant.clone(),
        user_id: user.clone(),
        label: label.to_string(),
        key_hash: hash_token(&secret),
        created_at: now,
        revoked_at: None,
        last_used_at: None,
    };
    services.store.insert_api_key(&record).await?;
    audit::human_action(
        services,
        tenant,
        actor,
        "lynx.keys.create",
        RunStatus::Succeeded,
        json!({"user_id": user, "label": label}),
        json!({"key_id": record.key_id}),
        None,
    )
    .await?;
    Ok(NewKey { record, secret })
}

/// Revokes a key; the key's tenant chain records who did it.
pub async fn revoke_key(services: &Services, key_id: &KeyId, actor: &str) -> Result<ApiKeyRecord, Refusal> {
    let keys = services.store.list_api_keys(None).await?;
    let Some(key) = keys.into_iter().find(|k| &k.key_id == key_id) else {
        return Err(Refusal::new(ErrorCode::NotFound, format!("no API key {key_id}"), "List keys with `lynx keys list`."));
    };
    let now: DateTime<Utc> = services.clock.now();
    if !services.store.revoke_api_key(key_id, now).await? {
        return Err(Refusal::new(
            ErrorCode::InvalidTransition,
            format!("API key {key_id} was already revoked"),
            "Nothing to do; create a new key if the user still needs access.",
        ));
    }
    audit::human_action(
        services,
        &key.tenant_id,
        actor,
        "lynx.keys.revoke",
        RunStatus::Succeeded,
        json!({"key_id": key_id}),
        json!({"revoked_at": now}),
        None,
    )
    .await?;
    Ok(ApiKeyRecord { revoked_at: Some(now), ..key })
}

/// How long a dashboard sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

/// A signed-in dashboard browser: who, and the token its forms must carry (CSRF).
#[derive(Debug, Clone)]
pub struct DashboardSession {
    pub who: Authenticated,
    pub csrf_token: String,
}

/// Signs a browser in with an API key; returns the session and the secret for its cookie.
pub async fn sign_in(services: &Services, api_key: &str) -> Result<(DashboardSession, String), Refusal> {
    let who = authenticate(services, &Credential::ApiKey(api_key.into())).await?;
    let key_id = who.key_id.clone().ok_or_else(|| unauthenticated("the dashboard needs an API key"))?;
    principal(services, &who).await?;
    let now = services.clock.now();
    let secret = random_hex(32);
    let record = lynx_model::store::SessionRecord {
        session_hash: hash_token(&secret),
        tenant_id: who.tenant_id.clone(),
        user_id: who.user_id.clone(),
        key_id: key_id.clone(),
        csrf_token: random_hex(24),
        created_at: now,
        expires_at: now + Duration::hours(SESSION_HOURS),
    };
    services.store.insert_session(&record).await?;
    audit::human_action(
        services,
        &who.tenant_id,
        who.user_id.as_str(),
        "lynx.dashboard.sign_in",
        RunStatus::Succeeded,
        json!({"key_id": key_id}),
        json!({"expires_at": record.expires_at}),
        None,
    )
    .await?;
    Ok((DashboardSession { who, csrf_token: record.csrf_token }, secret))
}

/// The live session behind a cookie's secret (expired sessions and revoked keys are none).
pub async fn session(services: &Services, secret: &str) -> Result<Option<DashboardSession>, Refusal> {
    let found = services.store.live_session(&hash_token(secret), services.clock.now()).await?;
    Ok(found.map(|s| DashboardSession {
        who: Authenticated { tenant_id: s.tenant_id, user_id: s.user_id, key_id: Some(s.key_id) },
        csrf_token: s.csrf_token,
    }))
}

pub async fn sign_out(services: &Services, secret: &str) -> Result<(), Refusal> {
    services.store.delete_session(&hash_token(secret)).await.map_err(Refusal::from)
}

/// A random token for forms and cookies.
pub fn random_token() -> String {
    random_hex(24)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    #[test]
    fn a_credential_never_prints_its_key() {
        let shown = format!("{:?}", Credential::ApiKey("lynx_0123456789abcdef".into()));
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    fn key() -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: KeyId::parse("lynx_k_test").unwrap(),
            tenant_id: TenantId::parse("tenant-1").unwrap(),
            user_id: UserId::parse("user-1").unwrap(),
            label: String::new(),
            key_hash: "h".into(),
            created_at: Utc::now(),
            revoked_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn key_cache_hits_until_expiry_and_again_after_a_fresh_put() {
        let cache = KeyCache::default();
        let ttl = StdDuration::from_millis(30);
        assert!(cache.get("h", ttl).is_none());
        cache.put("h".into(), &key(), ttl);
        assert!(cache.get("h", ttl).is_some());
        std::thread::sleep(StdDuration::from_millis(40));
        assert!(cache.get("h", ttl).is_none(), "an expired entry must not be served");
        // The lookup after expiry re-verifies the key and puts it again: it must be served from then on.
        cache.put("h".into(), &key(), ttl);
        assert!(cache.get("h", ttl).is_some(), "a re-verified key must replace its expired entry");
    }

    #[test]
    fn key_cache_is_off_at_zero_ttl() {
        let cache = KeyCache::default();
        cache.put("h".into(), &key(), StdDuration::ZERO);
        assert!(cache.get("h", StdDuration::from_secs(1)).is_none());
    }
}
