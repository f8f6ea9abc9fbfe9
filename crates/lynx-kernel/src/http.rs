//! The Kernel HTTP client (KERNEL.md's contract): bounded timeouts, `Authorization: Bearer` and
//! `X-Tenant-Id` on every request. A Kernel that cannot be reached, times out, answers 5xx or refuses
//! Lynx's key is `Unavailable` — reads fail with `KERNEL_UNAVAILABLE` and permission checks deny.
//! Nothing is cached: every answer, above all every permission decision, is the Kernel's current one.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use lynx_model::{
    TenantId, UserId,
    kernel::{Document, FinanceSummary, Kernel, KernelError, KernelHealth, PermissionDecision, PermissionRequest, Policies, TenantRecord, UserRecord, Vendor},
};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

pub struct HttpKernel {
    client: Client,
    base: String,
    key: SecretString,
}

impl HttpKernel {
    pub fn new(base: &str, key: &SecretString, timeout: Duration) -> Result<Self, String> {
        // One process-wide TLS provider (ring), chosen once; a second install is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the Kernel HTTP client: {e}"))?;
        Ok(Self { client, base: base.trim_end_matches('/').to_string(), key: SecretString::from(key.expose_secret().to_string()) })
    }

    fn request(&self, method: reqwest::Method, path: &str, tenant: Option<&TenantId>) -> RequestBuilder {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(self.key.expose_secret());
        if let Some(t) = tenant {
            req = req.header("X-Tenant-Id", t.as_str());
        }
        req
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, KernelError> {
        let resp = req.send().await.map_err(|e| {
            let why = if e.is_timeout() { "timed out".to_string() } else if e.is_connect() { "connection refused or unreachable".to_string() } else { e.to_string() };
            KernelError::Unavailable(format!("cannot reach the Kernel at {}: {why}", self.base))
        })?;
        let status = resp.status();
        if status.is_success() {
            return resp.json::<T>().await.map_err(|e| KernelError::Unavailable(format!("the Kernel's answer could not be read: {e}")));
        }
        let message = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        Err(match status {
            StatusCode::NOT_FOUND => KernelError::NotFound(message),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                KernelError::Unavailable(format!("the Kernel refused Lynx's credentials (HTTP {}): check KERNEL_API_KEY", status.as_u16()))
            }
            _ => KernelError::Unavailable(format!("the Kernel answered HTTP {}: {message}", status.as_u16())),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, tenant: &TenantId) -> Result<T, KernelError> {
        self.send(self.request(reqwest::Method::GET, path, Some(tenant))).await
    }
}

/// Path segments are ids the model already restricted to safe characters; vendor ids are escaped.
fn segment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c.to_string() } else { format!("%{:02X}", c as u32 & 0xff) })
        .collect()
}

#[async_trait::async_trait]
impl Kernel for HttpKernel {
    fn describe(&self) -> String {
        format!("HTTP {}", self.base)
    }

    async fn health(&self) -> Result<KernelHealth, KernelError> {
        self.send(self.request(reqwest::Method::GET, "/health", None)).await
    }

    async fn tenant(&self, tenant: &TenantId) -> Result<TenantRecord, KernelError> {
        self.get(&format!("/tenants/{}", segment(tenant.as_str())), tenant).await
    }

    async fn user(&self, tenant: &TenantId, user: &UserId) -> Result<UserRecord, KernelError> {
        self.get(&format!("/tenants/{}/users/{}", segment(tenant.as_str()), segment(user.as_str())), tenant).await
    }

    async fn check_permission(&self, request: &PermissionRequest) -> Result<PermissionDecision, KernelError> {
        self.send(self.request(reqwest::Method::POST, "/permissions/check", Some(&request.tenant_id)).json(request)).await
    }

    async fn policies(&self, tenant: &TenantId) -> Result<std::sync::Arc<Policies>, KernelError> {
        self.get(&format!("/tenants/{}/policies", segment(tenant.as_str())), tenant).await.map(std::sync::Arc::new)
    }

    async fn vendors(&self, tenant: &TenantId) -> Result<Vec<Vendor>, KernelError> {
        self.get(&format!("/tenants/{}/vendors", segment(tenant.as_str())), tenant).await
    }

    async fn vendor(&self, tenant: &TenantId, vendor_id: &str) -> Result<Vendor, KernelError> {
        self.get(&format!("/tenants/{}/vendors/{}", segment(tenant.as_str()), segment(vendor_id)), tenant).await
    }

    async fn documents(&self, tenant: &TenantId) -> Result<Vec<Document>, KernelError> {
        self.get(&format!("/tenants/{}/documents", segment(tenant.as_str())), tenant).await
    }

    async fn finance_summary(&self, tenant: &TenantId, period: &str) -> Result<FinanceSummary, KernelError> {
        self.get(&format!("/tenants/{}/finance/summary?period={}", segment(tenant.as_str()), segment(period)), tenant).await
    }
}
