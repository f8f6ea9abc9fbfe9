//! Maintenance mode: on when `LYNX_MAINTENANCE_MODE=true` at start or when the stored switch in
//! `lynx_settings` says so. The stored switch is read from the database, so every instance sharing it
//! sees a change on its next cell call.

use lynx_model::{ErrorCode, Refusal};

use crate::{services::Services};

pub const SETTING_KEY: &str = "maintenance_mode";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MaintenanceState {
    pub on: bool,
    pub from_env: bool,
    pub stored: bool,
}

pub async fn state(services: &Services) -> Result<MaintenanceState, Refusal> {
    let stored = services.store.setting(SETTING_KEY).await?.as_deref() == Some("on");
    let from_env = services.runtime.maintenance_from_env;
    Ok(MaintenanceState { on: stored || from_env, from_env, stored })
}

pub fn refusal() -> Refusal {
    Refusal::new(
        ErrorCode::MaintenanceMode,
        "Maintenance mode is on: executions are paused",
        "Reads and drafts still work. Retry the execution after an operator runs `lynx maintenance off`.",
    )
}
