//! Who is calling. The token names the tenant and user; role and scopes always come from the Kernel.

use serde::Serialize;

use crate::ids::{TenantId, UserId};

/// A resolved caller: `{tenant_id, user_id, role, scopes}` (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub role: String,
    pub scopes: Vec<String>,
}
