//! Call limits, checked for every tool call and API request right after identity.
//!
//! Two layers. A token bucket per API key in this instance's memory (`governor`): the flood guard, which
//! costs a few atomic operations to check and refuses a runaway agent before it reaches the database.
//! And a quota per tenant per minute that holds across every instance through the database: each instance
//! leases calls from the tenant's minute in batches (`Store::lease_calls`, under a row lock), so all the
//! instances together never admit more than the quota — at most the unspent part of each instance's
//! last batch goes unused — and the database sees one write per batch, not per call.
//!
//! The limits come from the tenant's Kernel policy (`rate_limits`), read at most every
//! `POLICY_REFRESH`; the operator's `LYNX_RATE_LIMIT_*` override it; `DEFAULT_RATES` fill the rest.
//! A refused call writes no audit row of its own — a flood must not grow the trail by a row per
//! refusal — it is counted in the metrics and recorded in the tenant's chain once per key and
//! `flush_refusals` round.
//!
//! Spend limits (`policies.spend_limits`, per currency and UTC day): what one user may draft in
//! payments, counted when the draft is inserted, and what the tenant may execute, counted when the
//! payment is applied — each inside that write's transaction (`Store::insert_draft`,
//! `Store::complete_execution`), so concurrent calls on any number of instances cannot pass a limit.
//! Here: which cap applies (`draft_cap`, `execution_cap`) and the refusal that says what is left.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, clock::Clock};
use lynx_model::{
    ErrorCode, Principal, Refusal, TenantId, UserId,
    store::StoreError,
    money::Currency,
    payload::DraftPayload,
    records::{Effect, SpendCap, SpendSubject, SpendTotals},
    vocab::RunStatus,
};
use rust_decimal::Decimal;
use serde_json::json;

use crate::{audit, identity::Authenticated, services::Services};

/// Calls per second and burst per API key, calls per minute per tenant; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub key_per_second: u32,
    pub key_burst: u32,
    pub tenant_per_minute: u32,
}

/// What a tenant gets when neither its Kernel policy nor the operator says otherwise: far above what an
/// agent working for people needs, far below what one stuck in a loop sends.
pub const DEFAULT_RATES: Rates = Rates { key_per_second: 100, key_burst: 200, tenant_per_minute: 30_000 };

/// The operator's `LYNX_RATE_LIMIT_*`: each, when set, wins over every tenant's Kernel policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateOverrides {
    pub key_per_second: Option<u32>,
    pub key_burst: Option<u32>,
    pub tenant_per_minute: Option<u32>,
}

/// How long a tenant's limits are used before its Kernel policy is read again.
const POLICY_REFRESH: Duration = Duration::from_secs(10);

/// How long a refused call waits before it is answered (see `Limiter::admit`).
const REFUSAL_PACE: Duration = Duration::from_secs(1);

/// Beyond this many keys or tenants the in-memory tables start over (a bound on memory).
const TABLE_MAX: usize = 10_000;

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Key,
    Tenant,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Tenant => "tenant",
        }
    }
}

pub struct Limiter {
    overrides: RateOverrides,
    rates: Mutex<HashMap<TenantId, (Instant, Rates)>>,
    buckets: Mutex<HashMap<String, (Rates, Arc<DefaultDirectRateLimiter>)>>,
    windows: Mutex<HashMap<TenantId, Window>>,
    refused: Mutex<HashMap<(TenantId, String, Scope), Refused>>,
    refused_total: [AtomicU64; 2],
}

/// This instance's share of a tenant's minute.
#[derive(Debug, Clone, Copy)]
struct Window {
    minute: i64,
    /// Leased and not yet spent.
    left: u32,
    /// The database granted nothing more this minute.
    spent: bool,
}

struct Refused {
    user: UserId,
    count: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl Limiter {
    pub fn new(overrides: RateOverrides) -> Self {
        Self {
            overrides,
            rates: Default::default(),
            buckets: Default::default(),
            windows: Default::default(),
            refused: Default::default(),
            refused_total: Default::default(),
        }
    }

    /// Calls refused so far by each limit, for `/metrics`.
    pub fn refused_total(&self, scope: Scope) -> u64 {
        self.refused_total[scope as usize].load(Ordering::Relaxed)
    }

    /// Admits one call of `who`, or refuses it with `RATE_LIMITED` and when to retry. A refusal is
    /// answered after half to all of `REFUSAL_PACE` — no longer than it tells the caller to wait anyway —
    /// so a client that retries at once paces itself instead of spinning: without it, 64 connections of
    /// one key kept both cores busy refusing and another tenant's p99 went from 7 ms to 93 ms; with a
    /// fixed pace, 2–5x its idle p99 (the refused connections came back together); jittered, 1.1–1.5x
    /// (the flood test, `tests/flood`).
    pub async fn admit(&self, services: &Services, who: &Authenticated) -> Result<(), Refusal> {
        let verdict = self.check(services, who).await;
        if let Err(r) = &verdict
            && r.code == ErrorCode::RateLimited
        {
            // Between half and all of the pace, at random: a flood's connections, all refused at once,
            // would otherwise come back at once, a burst every pace that other tenants' calls queue behind.
            let pace = REFUSAL_PACE.min(Duration::from_secs(r.retry_after_secs.unwrap_or(1)));
            tokio::time::sleep(pace.mul_f64(0.5 + rand::random::<f64>() / 2.0)).await;
        }
        verdict
    }

    async fn check(&self, services: &Services, who: &Authenticated) -> Result<(), Refusal> {
        let rates = self.rates(services, who.tenant_id()).await;
        if let Some(wait) = self.key_bucket(who, rates) {
            let message = format!(
                "Rate limited: API key {} may make {} calls per second (bursts of {}); retry in {:.1} s",
                who.key_id().map_or_else(|| who.user_id().to_string(), ToString::to_string),
                rates.key_per_second,
                rates.key_burst.max(rates.key_per_second),
                wait.as_secs_f64()
            );
            return Err(self.refuse(services, who, Scope::Key, wait, message));
        }
        if rates.tenant_per_minute == 0 {
            return Ok(());
        }
        let now = services.clock.now();
        let minute = now.timestamp().div_euclid(60);
        let to_next_minute = Duration::from_millis((60_000 - now.timestamp_millis().rem_euclid(60_000)) as u64);
        let spent = |this: &Self| {
            let message = format!(
                "Rate limited: tenant {} has made its {} calls for this minute (across every Lynx instance); retry in {} s",
                who.tenant_id(),
                rates.tenant_per_minute,
                to_next_minute.as_secs().max(1)
            );
            Err(this.refuse(services, who, Scope::Tenant, to_next_minute, message))
        };
        {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            if windows.len() >= TABLE_MAX {
                windows.clear();
            }
            let w = windows.entry(who.tenant_id().clone()).or_insert(Window { minute, left: 0, spent: false });
            if w.minute != minute {
                *w = Window { minute, left: 0, spent: false };
            }
            if w.left > 0 {
                w.left -= 1;
                return Ok(());
            }
            if w.spent {
                drop(windows);
                return spent(self);
            }
        }
        // A batch: a fiftieth of the minute's quota, so a busy tenant costs a write every ~1.2 s of its
        // quota, and an instance strands at most that much when the minute ends.
        let want = (rates.tenant_per_minute / 50).clamp(1, 200);
        let granted = match services.store.lease_calls(who.tenant_id(), minute, want, rates.tenant_per_minute).await {
            Ok(granted) => granted,
            // Storage that cannot be written cannot count calls either. The quota protects the store, and
            // no tool call gets past its own audit rows while the store refuses writes, so the request
            // goes on to fail there — or, for an operator's read such as `/api/status`, to say storage
            // is down instead of being refused for a lease it could not take.
            Err(StoreError::Unavailable(reason)) => {
                tracing::warn!(tenant = %who.tenant_id(), %reason, "tenant call quota not leased: storage unavailable; the request goes on to the gates that write");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.entry(who.tenant_id().clone()).or_insert(Window { minute, left: 0, spent: false });
        if w.minute == minute {
            if granted == 0 {
                w.spent = true;
            } else {
                w.left += granted - 1;
            }
        }
        drop(windows);
        if granted == 0 { spent(self) } else { Ok(()) }
    }

    /// The key's bucket: `None` when the call may go, else how long until it could.
    fn key_bucket(&self, who: &Authenticated, rates: Rates) -> Option<Duration> {
        let per_second = NonZeroU32::new(rates.key_per_second)?;
        let burst = NonZeroU32::new(rates.key_burst.max(rates.key_per_second)).unwrap_or(per_second);
        let id = match who.key_id() {
            Some(k) => k.to_string(),
            None => format!("{}/{}", who.tenant_id(), who.user_id()),
        };
        let bucket = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            if buckets.len() >= TABLE_MAX {
                buckets.clear();
            }
            let entry = buckets
                .entry(id)
                .or_insert_with(|| (rates, Arc::new(DefaultDirectRateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)))));
            if entry.0 != rates {
                *entry = (rates, Arc::new(DefaultDirectRateLimiter::direct(Quota::per_second(per_second).allow_burst(burst))));
            }
            entry.1.clone()
        };
        bucket.check().err().map(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }

    /// The tenant's limits: the operator's overrides, else its Kernel policy, else the defaults.
    async fn rates(&self, services: &Services, tenant: &TenantId) -> Rates {
        if let Some((at, rates)) = self.rates.lock().unwrap_or_else(|e| e.into_inner()).get(tenant)
            && at.elapsed() < POLICY_REFRESH
        {
            return *rates;
        }
        // A Kernel that cannot answer leaves the defaults in force (the permission gate refuses the call anyway).
        let policy = services.kernel.policies(tenant).await.ok().and_then(|p| p.rate_limits).unwrap_or_default();
        let o = self.overrides;
        let rates = Rates {
            key_per_second: o.key_per_second.or(policy.key_calls_per_second).unwrap_or(DEFAULT_RATES.key_per_second),
            key_burst: o.key_burst.or(policy.key_burst).unwrap_or(DEFAULT_RATES.key_burst),
            tenant_per_minute: o.tenant_per_minute.or(policy.tenant_calls_per_minute).unwrap_or(DEFAULT_RATES.tenant_per_minute),
        };
        let mut cache = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= TABLE_MAX {
            cache.clear();
        }
        cache.insert(tenant.clone(), (Instant::now(), rates));
        rates
    }

    fn refuse(&self, services: &Services, who: &Authenticated, scope: Scope, wait: Duration, message: String) -> Refusal {
        self.refused_total[scope as usize].fetch_add(1, Ordering::Relaxed);
        let now = services.clock.now();
        let key = who.key_id().map_or_else(String::new, ToString::to_string);
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let r = refused.entry((who.tenant_id().clone(), key, scope)).or_insert(Refused { user: who.user_id().clone(), count: 0, first: now, last: now });
        r.count += 1;
        r.last = now;
        drop(refused);
        let retry_after_secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        Refusal::new(
            ErrorCode::RateLimited,
            message,
            format!(
                "Wait {retry_after_secs} s (retry_after_secs), then call again; nothing was done. Limits are set per tenant in the Kernel policy's rate_limits, or by the operator with LYNX_RATE_LIMIT_*."
            ),
        )
        .retry_after(retry_after_secs)
    }

    /// Records the refusals since the last round in each tenant's audit chain: one `lynx.rate_limited`
    /// row per key and limit, with how many calls it refused between which times.
    pub async fn flush_refusals(&self, services: &Services) -> Result<usize, Refusal> {
        let drained: Vec<_> = std::mem::take(&mut *self.refused.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
        let rows = drained.len();
        for ((tenant, key_id, scope), r) in drained {
            audit::human_action(
                services,
                &tenant,
                r.user.as_str(),
                "lynx.rate_limited",
                RunStatus::Denied,
                json!({"key_id": key_id, "user_id": r.user, "limit": scope.as_str()}),
                json!({"refused_calls": r.count, "first_at": r.first, "last_at": r.last}),
                Some(format!("RATE_LIMITED: {} call(s) refused by the {} limit", r.count, scope.as_str())),
            )
            .await?;
        }
        Ok(rows)
    }
}

/// The creator's daily draft limit a new payment draft must fit, if the tenant's policy sets one. A
/// payment larger than the tenant's whole daily execution limit could never be executed, so it is
/// refused here already.
pub async fn draft_cap(services: &Services, creator: &Principal, payload: &DraftPayload) -> Result<Option<SpendCap>, Refusal> {
    let DraftPayload::Payment(p) = payload else { return Ok(None) };
    let policies = services.kernel.policies(&creator.tenant_id).await?;
    let limits = policies.spend_limits.get(p.currency.as_str()).copied().unwrap_or_default();
    let day = services.clock.now().date_naive();
    if let Some(tenant_cap) = limits.tenant_daily_executions.filter(|c| p.amount > *c) {
        let cap = SpendCap { subject: SpendSubject::Tenant, currency: p.currency.clone(), day, amount: p.amount.value(), cap: tenant_cap.value() };
        return Err(over_limit(&cap, SpendTotals { spent: Decimal::ZERO, cap: tenant_cap.value() }, services.clock.now()));
    }
    let Some(cap) = limits.agent_daily_drafts else { return Ok(None) };
    Ok(Some(SpendCap {
        subject: SpendSubject::Agent(creator.user_id.clone()),
        currency: p.currency.clone(),
        day,
        amount: p.amount.value(),
        cap: cap.value(),
    }))
}

/// The tenant's daily execution limit a payment must fit, if its policy sets one.
pub async fn execution_cap(services: &Services, tenant: &TenantId, effect: &Effect) -> Result<Option<SpendCap>, Refusal> {
    let Effect::Pay(p) = effect else { return Ok(None) };
    let policies = services.kernel.policies(tenant).await?;
    let Some(cap) = policies.spend_limits.get(p.currency.as_str()).and_then(|l| l.tenant_daily_executions) else { return Ok(None) };
    Ok(Some(SpendCap { subject: SpendSubject::Tenant, currency: p.currency.clone(), day: services.clock.now().date_naive(), amount: p.amount, cap: cap.value() }))
}

/// `SPEND_LIMIT_EXCEEDED`: whose limit, how much is counted and left today, and when it resets.
pub fn over_limit(cap: &SpendCap, totals: SpendTotals, now: DateTime<Utc>) -> Refusal {
    let money = |d: Decimal, c: &Currency| format!("{:.2} {c}", d);
    let left = (totals.cap - totals.spent).max(Decimal::ZERO);
    let resets = cap.day.succ_opt().map_or_else(String::new, |d| format!("{d}T00:00:00Z"));
    let (whose, counted) = match &cap.subject {
        SpendSubject::Agent(user) => (format!("user {user} may draft"), "drafted"),
        SpendSubject::Tenant => ("the tenant may execute".to_string(), "executed"),
    };
    let seconds_to_reset = cap
        .day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| (t.and_utc() - now).num_seconds().max(1) as u64);
    let refusal = Refusal::new(
        ErrorCode::SpendLimitExceeded,
        format!(
            "Spend limit reached: {whose} {} of payments per day; {} {counted} today, {} left, this one is {}; the limit resets at {resets}",
            money(totals.cap, &cap.currency),
            money(totals.spent, &cap.currency),
            money(left, &cap.currency),
            money(cap.amount, &cap.currency),
        ),
        "Nothing was done. Wait for the reset, use an amount within what is left, or ask a tenant administrator to change policies.spend_limits in the Kernel.",
    );
    match seconds_to_reset {
        Some(s) => refusal.retry_after(s),
        None => refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spend_refusal_says_what_was_counted_what_is_left_and_when_it_resets() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let cap = SpendCap {
            subject: SpendSubject::Agent(UserId::parse("agent-001").unwrap()),
            currency: Currency::parse("USD").unwrap(),
            day,
            amount: Decimal::new(15000, 2),
            cap: Decimal::new(100000, 2),
        };
        let now = day.and_hms_opt(23, 0, 0).unwrap().and_utc();
        let r = over_limit(&cap, SpendTotals { spent: Decimal::new(90000, 2), cap: cap.cap }, now);
        assert_eq!(r.code, ErrorCode::SpendLimitExceeded);
        assert_eq!(
            r.message,
            "Spend limit reached: user agent-001 may draft 1000.00 USD of payments per day; 900.00 USD drafted today, 100.00 USD left, this one is 150.00 USD; the limit resets at 2026-12-03T00:00:00Z"
        );
        assert_eq!(r.retry_after_secs, Some(3600), "an hour until midnight UTC");
        let over = over_limit(&SpendCap { subject: SpendSubject::Tenant, ..cap.clone() }, SpendTotals { spent: Decimal::new(120000, 2), cap: cap.cap }, now);
        assert!(over.message.contains("the tenant may execute 1000.00 USD") && over.message.contains("0.00 USD left"), "{}", over.message);
    }
}
