//! Webhook delivery. The transitions put events in the outbox (in their own transactions); this claims
//! the deliveries that are due — each by one instance, for a lease — sends them with a bounded timeout,
//! and records each attempt: delivered, retried later with exponential backoff and jitter, or, past the
//! maximum age, dead-lettered. Every attempt of an event carries the same `webhook-id`, so a receiver
//! deduplicates what at-least-once delivery may repeat.

mod slack;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lynx_governance::Services;
use lynx_model::webhook::{Attempt, DueDelivery, WebhookFormat, secret_bytes, signature};

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// How often to look for due deliveries (`LYNX_WEBHOOK_POLL_MS`).
    pub poll: Duration,
    /// The wait before the first retry; each next one doubles, up to an hour (`LYNX_WEBHOOK_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// How long an event is retried before it is dead-lettered (`LYNX_WEBHOOK_MAX_AGE_HOURS`).
    pub max_age: TimeDelta,
    /// One attempt's timeout (`LYNX_WEBHOOK_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Where the dashboard is, for links in Slack messages (`LYNX_PUBLIC_URL`).
    pub public_url: String,
}

/// The most deliveries one round claims.
const BATCH: u32 = 32;

pub struct Deliverer {
    services: Services,
    client: reqwest::Client,
    config: DeliveryConfig,
}

impl Deliverer {
    pub fn new(services: Services, config: DeliveryConfig) -> Result<Self, String> {
        // One process-wide TLS provider (ring), chosen once; a second install is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lynx-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Self { services, client, config })
    }

    /// Delivers until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            // A full round means more may be due: go again at once (still stopping when asked).
            let pause = if self.round().await == BATCH as usize { Duration::ZERO } else { self.config.poll };
            tokio::select! {
                biased;
                _ = &mut stop => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: claims what is due and sends it; how many it claimed.
    pub async fn round(&self) -> usize {
        let now = self.services.clock.now();
        // The lease outlives an attempt's timeout, so no other instance takes a delivery mid-send.
        let lease = TimeDelta::from_std(self.config.timeout * 3).unwrap_or(TimeDelta::seconds(30));
        let due = match self.services.store.claim_deliveries(now, now + lease, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "webhook deliveries not claimed");
                return 0;
            }
        };
        let n = due.len();
        // Each subscription's deliveries go one after another, oldest first, so a receiver sees a
        // draft's events in the order they happened (retries aside); subscriptions go side by side,
        // so one slow receiver holds up only itself.
        let mut by_webhook: Vec<Vec<DueDelivery>> = Vec::new();
        for d in due {
            match by_webhook.iter_mut().find(|q| q[0].delivery.webhook_id == d.delivery.webhook_id) {
                Some(queue) => queue.push(d),
                None => by_webhook.push(vec![d]),
            }
        }
        let queues = by_webhook.into_iter().map(|mut queue| async move {
            queue.sort_by(|a, b| (a.delivery.created_at, &a.delivery.event_id).cmp(&(b.delivery.created_at, &b.delivery.event_id)));
            let started = std::time::Instant::now();
            let mut queue = queue.into_iter();
            while let Some(d) = queue.next() {
                let (event_id, webhook_id, attempt) = self.deliver(d).await;
                if let Err(e) = self.services.store.record_attempt(&event_id, &webhook_id, &attempt, self.services.clock.now()).await {
                    tracing::warn!(error = %e, %event_id, %webhook_id, "webhook attempt not recorded; it will be sent again");
                }
                // The rest of the queue goes back: after the failed one's retry when the receiver
                // fails (keeping the order, sparing the receiver), or at once when one more attempt
                // could outlast the lease.
                let due_at = match &attempt {
                    Attempt::Failed { retry_at, .. } => Some(retry_at.unwrap_or_else(|| self.services.clock.now())),
                    Attempt::Delivered { .. } if started.elapsed() >= self.config.timeout => Some(self.services.clock.now()),
                    Attempt::Delivered { .. } => None,
                };
                if let Some(due_at) = due_at {
                    let rest: Vec<(String, String)> = queue.map(|d| (d.delivery.event_id, d.delivery.webhook_id)).collect();
                    if !rest.is_empty()
                        && let Err(e) = self.services.store.release_deliveries(&rest, due_at).await
                    {
                        tracing::warn!(error = %e, "claimed webhook deliveries not handed back; they go out when their lease ends");
                    }
                    break;
                }
            }
        });
        futures_util::future::join_all(queues).await;
        n
    }

    async fn deliver(&self, due: DueDelivery) -> (String, String, Attempt) {
        let (event_id, webhook_id) = (due.delivery.event_id.clone(), due.delivery.webhook_id.clone());
        let attempt = match self.send(&due).await {
            Ok(status) if (200..300).contains(&status) => Attempt::Delivered { status },
            Ok(status) => self.failed(&due, Some(status), format!("the receiver answered HTTP {status}")),
            Err(error) => self.failed(&due, None, error),
        };
        match &attempt {
            Attempt::Delivered { .. } => tracing::debug!(%event_id, %webhook_id, "webhook delivered"),
            Attempt::Failed { error, retry_at, .. } => tracing::info!(%event_id, %webhook_id, %error, ?retry_at, "webhook not delivered"),
        }
        (event_id, webhook_id, attempt)
    }

    async fn send(&self, due: &DueDelivery) -> Result<u16, String> {
        let (body, signed) = match due.format {
            WebhookFormat::Standard => (due.payload.to_string(), true),
            WebhookFormat::Slack => (slack::message(&due.payload, &self.config.public_url).to_string(), false),
        };
        let mut request = self.client.post(&due.url).header("content-type", "application/json");
        if signed {
            let secret = self.services.webhooks.secret_for(&due.delivery.webhook_id).map_err(|r| r.message)?;
            let key = secret_bytes(&secret)?;
            let timestamp = self.services.clock.now().timestamp();
            request = request
                .header("webhook-id", &due.delivery.event_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature(&key, &due.delivery.event_id, timestamp, body.as_bytes()));
        }
        let response = request.body(body).send().await.map_err(|e| {
            if e.is_timeout() { format!("no answer within {} ms", self.config.timeout.as_millis()) } else { format!("cannot reach the receiver: {}", cause(&e)) }
        })?;
        Ok(response.status().as_u16())
    }

    fn failed(&self, due: &DueDelivery, status: Option<u16>, error: String) -> Attempt {
        let retry_at = retry_or_give_up(due.delivery.attempts + 1, due.delivery.created_at, self.services.clock.now(), &self.config);
        Attempt::Failed { status, error, retry_at }
    }
}

/// The innermost cause of a send error ("Connection refused", "dns error: …"): reqwest's own message
/// is only "error sending request". Never the URL, which may carry a token.
fn cause(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let text = inner.to_string();
    if text.contains("://") { "the connection failed".into() } else { text }
}

/// After `attempts` failures of an event created at `created`: when to try again, or `None` —
/// dead-letter — when that would be past the maximum age.
fn retry_or_give_up(attempts: i64, created: DateTime<Utc>, now: DateTime<Utc>, config: &DeliveryConfig) -> Option<DateTime<Utc>> {
    next_attempt(attempts, now, config.retry_base).filter(|at| *at - created <= config.max_age)
}

/// When to try again after `attempts` failures: base × 2^(attempts − 1), at most an hour, ± a quarter
/// of it at random so that receivers coming back are not hit by every sender at once.
fn next_attempt(attempts: i64, now: DateTime<Utc>, base: Duration) -> Option<DateTime<Utc>> {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let delay = base.saturating_mul(2u32.saturating_pow(exp)).min(Duration::from_secs(3600));
    let jitter = 0.75 + rand::random::<f64>() * 0.5;
    let delay = TimeDelta::from_std(delay.mul_f64(jitter)).ok()?;
    Some(now + delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_past_its_maximum_age_is_dead_lettered() {
        let config = DeliveryConfig {
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(60),
            max_age: TimeDelta::hours(1),
            timeout: Duration::from_secs(10),
            public_url: String::new(),
        };
        let created = Utc::now();
        assert!(retry_or_give_up(1, created, created, &config).is_some(), "a fresh event is retried");
        // 50 minutes in, the next wait (≥ 45 min at attempt 7: 64 min ± 25 %, capped at an hour) ends past the hour.
        assert_eq!(retry_or_give_up(7, created, created + TimeDelta::minutes(50), &config), None);
        assert_eq!(retry_or_give_up(1, created, created + TimeDelta::minutes(61), &config), None, "already too old");
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_an_hour() {
        let now = Utc::now();
        let base = Duration::from_secs(10);
        for (attempts, nominal) in [(1, 10.0), (2, 20.0), (3, 40.0), (12, 3600.0)] {
            let wait = (next_attempt(attempts, now, base).unwrap() - now).num_milliseconds() as f64 / 1000.0;
            assert!(wait >= nominal * 0.75 - 0.01 && wait <= nominal * 1.25 + 0.01, "{attempts}: {wait}");
        }
    }
}
