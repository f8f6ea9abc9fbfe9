//! Configuration from the environment (SPEC §8, the runbook's variable names). A bad value stops
//! start-up with a message that names the variable, the value and what is allowed.

use std::{net::SocketAddr, path::PathBuf};

use lynx_model::{Mode, webhook::WebhookFormat};
use secrecy::SecretString;
use lynx_store::{DatabaseUrl, SupabaseProject};

/// Versions of the tool contract and protocol this binary implements.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable}={value:?} is not valid: {allowed}")]
    Invalid { variable: &'static str, value: String, allowed: String },
    #[error("{0}")]
    Inconsistent(String),
}

fn invalid(variable: &'static str, value: &str, allowed: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { variable, value: value.to_string(), allowed: allowed.into() }
}

/// Where the Kernel's data comes from.
#[derive(Debug, Clone)]
pub enum KernelSource {
    /// The built-in demo data.
    Demo,
    /// A Kernel file (`LYNX_KERNEL_FILE`).
    File(PathBuf),
    /// The Kernel's HTTP API (`KERNEL_API_URL`, `KERNEL_API_KEY`, `KERNEL_TIMEOUT_MS`).
    Http { url: String, key: SecretString, timeout_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub database: DatabaseUrl,
    pub supabase: Option<SupabaseProject>,
    /// At most this many database connections (PostgreSQL), `LYNX_DB_POOL_SIZE`.
    pub pool_size: u32,
    /// Names this instance in the audit trail, `LYNX_INSTANCE_ID`.
    pub instance_id: String,
    pub kernel: KernelSource,
    pub maintenance: bool,
    pub protocol_version: String,
    pub toolset_version: String,
    pub bind: SocketAddr,
    pub api_key: Option<SecretString>,
    pub allowed_hosts: Vec<String>,
    pub log_json: bool,
    /// Dev mode only: pause between an execution's claim and its commit (crash tests).
    pub failpoint_after_claim_ms: Option<u64>,
    /// How long a verified API key is trusted before the database is asked again, `LYNX_KEY_CACHE_MS`.
    pub key_cache_ms: u64,
    /// `LYNX_RATE_LIMIT_KEY_PER_SECOND`, `_KEY_BURST`, `_TENANT_PER_MINUTE`: when set, they win over every
    /// tenant's Kernel policy (0 is unlimited).
    pub rate_overrides: lynx_governance::limits::RateOverrides,
    /// `LYNX_HTTP_MAX_CONNECTIONS`, `LYNX_HTTP_HEADER_TIMEOUT_MS`, `LYNX_HTTP_IDLE_TIMEOUT_MS`.
    pub connection_limits: lynx_http::ConnectionLimits,
    /// Async runtime threads, `LYNX_WORKER_THREADS`; unset: see `worker_threads`.
    pub worker_threads: Option<usize>,
    pub notifications: NotificationSettings,
    /// How often this instance expires drafts past their decision deadline, `LYNX_SWEEP_INTERVAL_MS`.
    pub sweep_interval_ms: u64,
    pub audit: AuditSettings,
}

/// Signed checkpoints of the audit trail.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// `LYNX_AUDIT_SIGNING_KEY`: the file holding the checkpoint signing key.
    pub signing_key: Option<PathBuf>,
    /// `LYNX_AUDIT_CHECKPOINT_DIR`: where each checkpoint is also written as a file.
    pub checkpoint_dir: Option<PathBuf>,
    /// `LYNX_AUDIT_CHECKPOINT_INTERVAL`: how often grown trees are checkpointed; `None` (`off`): only
    /// at shutdown and on `lynx audit checkpoint`.
    pub interval: Option<std::time::Duration>,
}

/// Webhook notifications: the subscription to every tenant the environment configures, the key that
/// signs the stored subscriptions' deliveries, and how deliveries are paced.
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// `LYNX_WEBHOOK_URL`: one subscription covering every tenant.
    pub url: Option<String>,
    /// `LYNX_WEBHOOK_SECRET` (`whsec_…`): signs what `LYNX_WEBHOOK_URL` receives.
    pub secret: Option<SecretString>,
    /// `LYNX_WEBHOOK_FORMAT`: `standard` or `slack`.
    pub format: WebhookFormat,
    /// `LYNX_WEBHOOK_KEY_FILE`: the instance key the stored subscriptions' secrets derive from.
    pub key_file: Option<PathBuf>,
    /// `LYNX_PUBLIC_URL`: where people reach the dashboard (the links in messages).
    pub public_url: String,
    pub retry_base_ms: u64,
    pub max_age_hours: u64,
    pub poll_ms: u64,
    pub timeout_ms: u64,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings from any variable lookup (the tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let mode = match var("LYNX_MODE") {
            None => Mode::Dev,
            Some(v) => v.parse().map_err(|_| invalid("LYNX_MODE", &v, format!("allowed values are {}", Mode::ALLOWED)))?,
        };

        let supabase = (var("SUPABASE_URL"), var("SUPABASE_KEY"));
        let database_url = var("LYNX_DATABASE_URL").or_else(|| var("SUPABASE_DB_URL"));
        if database_url.is_none() && (supabase.0.is_some() || supabase.1.is_some()) {
            return Err(ConfigError::Inconsistent(
                "SUPABASE_URL/SUPABASE_KEY are set but no database connection string is: Lynx needs real transactions, which \
                 Supabase's REST API does not give. In the Supabase dashboard open Project Settings → Database → Connection \
                 string (URI), copy the postgres://… string, and set it as LYNX_DATABASE_URL (or SUPABASE_DB_URL)."
                    .into(),
            ));
        }
        let database_url = database_url.unwrap_or_else(|| "sqlite://lynx.db".into());
        let database = DatabaseUrl::parse(&database_url).map_err(|why| {
            // The URL may hold a password: show only its scheme.
            let shown = database_url.split("://").next().map(|s| format!("{s}://…")).unwrap_or_default();
            invalid("LYNX_DATABASE_URL", &shown, format!("{why}; allowed: {}", DatabaseUrl::ALLOWED))
        })?;
        if mode == Mode::Prod && database.is_ephemeral() {
            return Err(ConfigError::Inconsistent(format!(
                "LYNX_MODE=prod needs a durable store, but LYNX_DATABASE_URL points at {} (in memory or in a temp directory); \
                 use a persistent path such as sqlite:///var/lib/lynx/lynx.db",
                database.describe()
            )));
        }

        let supabase = match supabase {
            (Some(url), Some(key)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(invalid("SUPABASE_URL", &url, "must be the project's URL, such as https://xyzcompany.supabase.co"));
                }
                Some(SupabaseProject { url, key: key.into() })
            }
            (Some(_), None) => return Err(ConfigError::Inconsistent("SUPABASE_URL is set but SUPABASE_KEY is not: set both, or neither".into())),
            (None, Some(_)) => return Err(ConfigError::Inconsistent("SUPABASE_KEY is set but SUPABASE_URL is not: set both, or neither".into())),
            (None, None) => None,
        };
        let pool_size = match var("LYNX_DB_POOL_SIZE") {
            None => 16,
            Some(v) => v.parse().ok().filter(|n| (1..=512).contains(n)).ok_or_else(|| invalid("LYNX_DB_POOL_SIZE", &v, "must be a number from 1 to 512"))?,
        };

        let kernel = match (var("KERNEL_API_URL"), var("LYNX_KERNEL_FILE")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Inconsistent(
                    "KERNEL_API_URL and LYNX_KERNEL_FILE are both set: use the Kernel's HTTP API or a Kernel file, not both".into(),
                ));
            }
            (Some(url), None) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid("KERNEL_API_URL", &url, "must be an http:// or https:// URL such as http://localhost:3000"));
                }
                let key = var("KERNEL_API_KEY").ok_or_else(|| {
                    ConfigError::Inconsistent("KERNEL_API_URL is set but KERNEL_API_KEY is not: the Kernel API needs Lynx's key".into())
                })?;
                let timeout_ms = match var("KERNEL_TIMEOUT_MS") {
                    None => 3000,
                    Some(v) => v
                        .parse()
                        .ok()
                        .filter(|n| (50..=60_000).contains(n))
                        .ok_or_else(|| invalid("KERNEL_TIMEOUT_MS", &v, "must be a number of milliseconds from 50 to 60000"))?,
                };
                KernelSource::Http { url, key: key.into(), timeout_ms }
            }
            (None, Some(path)) => KernelSource::File(PathBuf::from(path)),
            (None, None) => KernelSource::Demo,
        };

        let maintenance = match var("LYNX_MAINTENANCE_MODE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on") => true,
            Some(_) => {
                let v = var("LYNX_MAINTENANCE_MODE").unwrap_or_default();
                return Err(invalid("LYNX_MAINTENANCE_MODE", &v, "allowed values are true or false"));
            }
        };

        let version = |name: &'static str| -> Result<String, ConfigError> {
            let v = var(name).unwrap_or_else(|| SUPPORTED_VERSIONS[0].to_string());
            if SUPPORTED_VERSIONS.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(invalid(name, &v, format!("this Lynx implements {}", SUPPORTED_VERSIONS.join(", "))))
            }
        };
        let protocol_version = version("LYNX_PROTOCOL_VERSION")?;
        let toolset_version = version("MCP_TOOLSET_VERSION")?;

        let bind = match (var("LYNX_BIND"), var("PORT")) {
            (Some(b), _) => b.parse().map_err(|_| invalid("LYNX_BIND", &b, "must be HOST:PORT such as 0.0.0.0:8000 or 127.0.0.1:0"))?,
            (None, Some(p)) => {
                let port: u16 = p.parse().map_err(|_| invalid("PORT", &p, "must be a port number 0-65535"))?;
                SocketAddr::from(([0, 0, 0, 0], port))
            }
            (None, None) => SocketAddr::from(([0, 0, 0, 0], 8000)),
        };

        let allowed_hosts = match var("LYNX_ALLOWED_HOSTS") {
            Some(v) if v == "*" => Vec::new(),
            Some(v) => v.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect(),
            None => vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        };

        let log_json = match var("LYNX_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(v) => return Err(invalid("LYNX_LOG_FORMAT", v, "allowed values are text or json")),
        };

        let failpoint_after_claim_ms = match var("LYNX_FAILPOINT_AFTER_CLAIM_MS") {
            None => None,
            Some(v) if mode != Mode::Dev => {
                return Err(invalid("LYNX_FAILPOINT_AFTER_CLAIM_MS", &v, "fault injection is accepted in dev mode only"));
            }
            Some(v) => Some(v.parse().map_err(|_| invalid("LYNX_FAILPOINT_AFTER_CLAIM_MS", &v, "must be a number of milliseconds"))?),
        };

        let instance_id = var("LYNX_INSTANCE_ID").unwrap_or_else(default_instance_id);
        let key_cache_ms = match var("LYNX_KEY_CACHE_MS") {
            None => 1000,
            Some(v) => v.parse().ok().filter(|n| *n <= 60_000).ok_or_else(|| invalid("LYNX_KEY_CACHE_MS", &v, "must be milliseconds from 0 to 60000"))?,
        };

        let rate = |name: &'static str| -> Result<Option<u32>, ConfigError> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| invalid(name, &v, "must be a whole number of calls (0 = unlimited)")),
            }
        };
        let rate_overrides = lynx_governance::limits::RateOverrides {
            key_per_second: rate("LYNX_RATE_LIMIT_KEY_PER_SECOND")?,
            key_burst: rate("LYNX_RATE_LIMIT_KEY_BURST")?,
            tenant_per_minute: rate("LYNX_RATE_LIMIT_TENANT_PER_MINUTE")?,
        };

        let bounded = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>, unit: &str| -> Result<u64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| invalid(name, &v, format!("must be {unit} from {} to {}", range.start(), range.end()))),
            }
        };
        let defaults = lynx_http::ConnectionLimits::default();
        let connection_limits = lynx_http::ConnectionLimits {
            max_connections: bounded("LYNX_HTTP_MAX_CONNECTIONS", defaults.max_connections as u64, 1..=100_000, "a number of connections")? as usize,
            header_timeout: std::time::Duration::from_millis(bounded("LYNX_HTTP_HEADER_TIMEOUT_MS", defaults.header_timeout.as_millis() as u64, 100..=300_000, "milliseconds")?),
            idle_timeout: std::time::Duration::from_millis(bounded("LYNX_HTTP_IDLE_TIMEOUT_MS", defaults.idle_timeout.as_millis() as u64, 100..=3_600_000, "milliseconds")?),
        };

        let worker_threads = match var("LYNX_WORKER_THREADS") {
            None => None,
            Some(v) => Some(v.parse().ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| invalid("LYNX_WORKER_THREADS", &v, "must be a number from 1 to 256"))?),
        };

        let notifications = notification_settings(&var, bind)?;
        let audit = AuditSettings {
            signing_key: var("LYNX_AUDIT_SIGNING_KEY").map(PathBuf::from),
            checkpoint_dir: var("LYNX_AUDIT_CHECKPOINT_DIR").map(PathBuf::from),
            interval: match var("LYNX_AUDIT_CHECKPOINT_INTERVAL").as_deref() {
                None => Some(std::time::Duration::from_secs(60)),
                Some("off") => None,
                Some(v) => {
                    let allowed = "a duration from 100ms to 1d such as 60s, 5m or 500ms, or off";
                    let d = parse_duration(v).map_err(|_| invalid("LYNX_AUDIT_CHECKPOINT_INTERVAL", v, allowed))?;
                    let ms = d.num_milliseconds();
                    if !(100..=86_400_000).contains(&ms) {
                        return Err(invalid("LYNX_AUDIT_CHECKPOINT_INTERVAL", v, allowed));
                    }
                    Some(std::time::Duration::from_millis(ms as u64))
                }
            },
        };
        let sweep_interval_ms = number(&var, "LYNX_SWEEP_INTERVAL_MS", 30_000, 100..=3_600_000, "milliseconds from 100 to 3600000")?;

        Ok(Self {
            audit,
            notifications,
            sweep_interval_ms,
            key_cache_ms,
            rate_overrides,
            connection_limits,
            worker_threads,
            supabase,
            pool_size,
            instance_id,
            failpoint_after_claim_ms,
            mode,
            database,
            kernel,
            maintenance,
            protocol_version,
            toolset_version,
            bind,
            api_key: var("LYNX_API_KEY").map(SecretString::from),
            allowed_hosts,
            log_json,
        })
    }
}

/// `500ms`, `90s`, `30m`, `1h`, `2d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<chrono::TimeDelta, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let bad = || format!("{s:?} is not a duration such as 90s, 30m, 1h or 2d");
    let n: i64 = n.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    };
    ms.map(chrono::TimeDelta::milliseconds).ok_or_else(bad)
}

/// A whole number from a variable, within `range`; unset: `default`.
fn number(var: &impl Fn(&str) -> Option<String>, name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>, what: &str) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| invalid(name, &v, format!("must be {what}"))),
    }
}

fn notification_settings(var: &impl Fn(&str) -> Option<String>, bind: SocketAddr) -> Result<NotificationSettings, ConfigError> {
    let format = match var("LYNX_WEBHOOK_FORMAT") {
        None => WebhookFormat::Standard,
        Some(v) => WebhookFormat::parse(&v).ok_or_else(|| invalid("LYNX_WEBHOOK_FORMAT", &v, "allowed values are standard or slack"))?,
    };
    let url = var("LYNX_WEBHOOK_URL");
    if let Some(u) = &url {
        lynx_model::webhook::check_url(u).map_err(|why| invalid("LYNX_WEBHOOK_URL", u, why))?;
    }
    let secret = var("LYNX_WEBHOOK_SECRET");
    if let Some(s) = &secret {
        // Never echo a secret: name the variable and what is wrong only.
        lynx_model::webhook::secret_bytes(s).map_err(|why| invalid("LYNX_WEBHOOK_SECRET", "…", why))?;
    }
    if url.is_some() && secret.is_none() && format == WebhookFormat::Standard {
        return Err(ConfigError::Inconsistent(
            "LYNX_WEBHOOK_URL is set but LYNX_WEBHOOK_SECRET is not: Standard Webhooks deliveries are signed. Create a secret with \
             `lynx webhooks keygen --secret` and give the receiver the same one (or set LYNX_WEBHOOK_FORMAT=slack for a Slack incoming webhook)."
                .into(),
        ));
    }
    let public_url = var("LYNX_PUBLIC_URL").unwrap_or_else(|| {
        let host = if bind.ip().is_unspecified() { "localhost".to_string() } else { bind.ip().to_string() };
        format!("http://{host}:{}", bind.port())
    });
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        return Err(invalid("LYNX_PUBLIC_URL", &public_url, "must be the http:// or https:// address people open the dashboard at"));
    }
    Ok(NotificationSettings {
        url,
        secret: secret.map(SecretString::from),
        format,
        key_file: var("LYNX_WEBHOOK_KEY_FILE").map(PathBuf::from),
        public_url,
        retry_base_ms: number(var, "LYNX_WEBHOOK_RETRY_BASE_MS", 10_000, 10..=3_600_000, "milliseconds from 10 to 3600000")?,
        max_age_hours: number(var, "LYNX_WEBHOOK_MAX_AGE_HOURS", 72, 1..=720, "hours from 1 to 720")?,
        poll_ms: number(var, "LYNX_WEBHOOK_POLL_MS", 1000, 10..=60_000, "milliseconds from 10 to 60000")?,
        timeout_ms: number(var, "LYNX_WEBHOOK_TIMEOUT_MS", 10_000, 100..=60_000, "milliseconds from 100 to 60000")?,
    })
}

impl Settings {
    /// How many threads run the async runtime. On SQLite every write runs on the store's own writer
    /// thread, which keeps a core busy under load; a runtime thread per core beside it only makes the
    /// two fight over cores (measured: about 10% fewer calls per second on two cores). So SQLite gets
    /// one thread fewer than there are cores, PostgreSQL one per core, `LYNX_WORKER_THREADS` decides.
    pub fn worker_threads(&self, cores: usize) -> usize {
        self.worker_threads.unwrap_or(match self.database {
            DatabaseUrl::Sqlite { .. } => cores.saturating_sub(1).max(1),
            DatabaseUrl::Postgres { .. } => cores.max(1),
        })
    }
}

/// `host:pid`, so concurrent instances are told apart in the audit trail.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
    let host = host.or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_else(|| "lynx".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use secrecy::ExposeSecret;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.mode, Mode::Dev);
        assert_eq!(s.database, DatabaseUrl::Sqlite { path: "lynx.db".into() });
        assert!(matches!(s.kernel, KernelSource::Demo));
        assert_eq!(s.bind.to_string(), "0.0.0.0:8000");
        assert!(!s.maintenance);
        assert_eq!(settings(&[("PORT", "9000")]).unwrap().bind.to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn runtime_threads_leave_sqlite_writer_a_core() {
        let sqlite = settings(&[]).unwrap();
        assert_eq!((sqlite.worker_threads(1), sqlite.worker_threads(2), sqlite.worker_threads(8)), (1, 1, 7));
        let pg = settings(&[("LYNX_DATABASE_URL", "postgres://u@h/db")]).unwrap();
        assert_eq!((pg.worker_threads(1), pg.worker_threads(2)), (1, 2));
        assert_eq!(settings(&[("LYNX_WORKER_THREADS", "3")]).unwrap().worker_threads(2), 3);
        let e = settings(&[("LYNX_WORKER_THREADS", "0")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_WORKER_THREADS=\"0\""), "{e}");
    }

    #[test]
    fn bad_values_name_variable_value_and_allowed() {
        let e = settings(&[("LYNX_MODE", "production")]).unwrap_err().to_string();
        assert_eq!(e, "LYNX_MODE=\"production\" is not valid: allowed values are dev, staging, prod");
        let e = settings(&[("MCP_TOOLSET_VERSION", "9.9.9")]).unwrap_err().to_string();
        assert!(e.contains("MCP_TOOLSET_VERSION=\"9.9.9\"") && e.contains("0.1.0"), "{e}");
        let e = settings(&[("LYNX_MAINTENANCE_MODE", "maybe")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_MAINTENANCE_MODE") && e.contains("true or false"), "{e}");
        let e = settings(&[("LYNX_BIND", "nowhere")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_BIND=\"nowhere\""), "{e}");
        let e = settings(&[("LYNX_DATABASE_URL", "mysql://u:secret@h/db")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_DATABASE_URL") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn prod_needs_a_durable_store_and_supabase_needs_a_connection_string() {
        let e = settings(&[("LYNX_MODE", "prod"), ("LYNX_DATABASE_URL", "sqlite::memory:")]).unwrap_err().to_string();
        assert!(e.contains("durable"), "{e}");
        assert!(settings(&[("LYNX_MODE", "prod"), ("LYNX_DATABASE_URL", "sqlite://lynx.db")]).is_ok());
        let e = settings(&[("SUPABASE_URL", "https://x.supabase.co"), ("SUPABASE_KEY", "k")]).unwrap_err().to_string();
        assert!(e.contains("Connection string") && e.contains("LYNX_DATABASE_URL"), "{e}");
        let s = settings(&[("SUPABASE_URL", "https://x.supabase.co"), ("SUPABASE_KEY", "k"), ("SUPABASE_DB_URL", "postgres://u:p@h/db")]).unwrap();
        assert!(s.supabase.is_some() && matches!(s.database, DatabaseUrl::Postgres { .. }));
    }

    #[test]
    fn notifications_are_checked_and_never_echo_the_secret() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.notifications.url.as_deref(), s.notifications.format, s.notifications.public_url.as_str()), (None, WebhookFormat::Standard, "http://localhost:8000"));
        let e = settings(&[("LYNX_WEBHOOK_URL", "http://127.0.0.1:9/hook")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_WEBHOOK_SECRET is not"), "{e}");
        assert!(settings(&[("LYNX_WEBHOOK_URL", "https://hooks.slack.example/x"), ("LYNX_WEBHOOK_FORMAT", "slack")]).is_ok());
        let e = settings(&[("LYNX_WEBHOOK_SECRET", "whsec_not*base64")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_WEBHOOK_SECRET") && !e.contains("not*base64"), "{e}");
        let e = settings(&[("LYNX_WEBHOOK_URL", "ftp://x")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_WEBHOOK_URL=\"ftp://x\""), "{e}");
        let e = settings(&[("LYNX_WEBHOOK_RETRY_BASE_MS", "0")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_WEBHOOK_RETRY_BASE_MS"), "{e}");
        let e = settings(&[("LYNX_WEBHOOK_FORMAT", "teams")]).unwrap_err().to_string();
        assert!(e.contains("standard or slack"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap().num_seconds(), 3600);
        assert_eq!(parse_duration("90s").unwrap().num_seconds(), 90);
        assert_eq!(parse_duration("90").unwrap().num_seconds(), 90);
        assert_eq!(parse_duration("250ms").unwrap().num_milliseconds(), 250);
        assert_eq!(parse_duration("2d").unwrap().num_seconds(), 172_800);
        assert!(parse_duration("1 hour").is_err() && parse_duration("h").is_err() && parse_duration("99999999999999999d").is_err());
        assert_eq!(settings(&[]).unwrap().audit.interval, Some(std::time::Duration::from_secs(60)));
        assert_eq!(settings(&[("LYNX_AUDIT_CHECKPOINT_INTERVAL", "off")]).unwrap().audit.interval, None);
        let e = settings(&[("LYNX_AUDIT_CHECKPOINT_INTERVAL", "10ms")]).unwrap_err().to_string();
        assert!(e.contains("LYNX_AUDIT_CHECKPOINT_INTERVAL=\"10ms\""), "{e}");
    }

    #[test]
    fn the_kernel_over_http_needs_its_key() {
        let e = settings(&[("KERNEL_API_URL", "http://localhost:3000")]).unwrap_err().to_string();
        assert!(e.contains("KERNEL_API_KEY"), "{e}");
        let s = settings(&[("KERNEL_API_URL", "http://localhost:3000"), ("KERNEL_API_KEY", "k")]).unwrap();
        match &s.kernel {
            KernelSource::Http { url, key, timeout_ms } => {
                assert_eq!((url.as_str(), key.expose_secret(), *timeout_ms), ("http://localhost:3000", "k", 3000));
                assert!(!format!("{:?}", s.kernel).contains("\"k\""), "the key never prints");
            }
            other => panic!("{other:?}"),
        }
        let e = settings(&[("KERNEL_API_URL", "localhost:3000"), ("KERNEL_API_KEY", "k")]).unwrap_err().to_string();
        assert!(e.contains("KERNEL_API_URL=\"localhost:3000\""), "{e}");
    }
}
