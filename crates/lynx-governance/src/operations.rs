//! Operator procedures of the runbook, each audited with the acting principal: clearing stuck
//! executions, rolling an execution back, moving a settlement along, and maintenance mode.

use chrono::TimeDelta;
use lynx_model::{
    ExecutionId, PaymentId,
    vocab::SettlementStatus,
    ErrorCode, Refusal, TenantId,
    records::{ExecutionRecord, RollbackOutcome, SettlementChange, SettlementRecord},
    vocab::RunStatus,
};
use serde_json::json;

use crate::{audit, maintenance, services::Services};

/// The audit chain for actions that belong to no tenant (maintenance mode).
pub const SYSTEM_TENANT: &str = "_system";

/// Marks `STARTED` executions older than `older_than` as `FAILED`; each is audited in its tenant's chain.
pub async fn clear_stuck(services: &Services, older_than: TimeDelta, operator: &str) -> Result<Vec<ExecutionRecord>, Refusal> {
    let now = services.clock.now();
    let cleared = services.store.clear_stuck(now - older_than, now).await?;
    for e in &cleared {
        audit::human_action(
            services,
            &e.tenant_id,
            operator,
            "lynx.executions.clear_stuck",
            RunStatus::Succeeded,
            json!({"older_than_seconds": older_than.num_seconds()}),
            json!({"execution_id": e.execution_id, "draft_id": e.draft_id, "tool_id": e.tool_id, "status": "FAILED"}),
            None,
        )
        .await?;
    }
    Ok(cleared)
}

/// Carries out an execution's rollback instructions. `tenant` scopes the lookup (`None`: operator CLI).
pub async fn rollback(services: &Services, tenant: Option<&TenantId>, execution_id: ExecutionId, actor: &str) -> Result<ExecutionRecord, Refusal> {
    let not_found = || Refusal::new(ErrorCode::NotFound, format!("No execution {execution_id}"), "List executions with `lynx executions list`.");
    let e = services.store.execution(tenant, execution_id).await?.ok_or_else(not_found)?;
    let now = services.clock.now();
    let outcome = services.store.rollback_execution(&e.tenant_id, execution_id, actor, now).await?;
    let input = json!({"execution_id": execution_id, "tool_id": e.tool_id, "rollback_instructions": e.rollback_instructions});
    match outcome {
        RollbackOutcome::Done(done) => {
            audit::human_action(services, &e.tenant_id, actor, "lynx.executions.rollback", RunStatus::Succeeded, input,
                json!({"execution_id": execution_id, "draft_id": done.draft_id, "rolled_back_at": done.rolled_back_at}), None).await?;
            Ok(*done)
        }
        RollbackOutcome::NotFound => Err(not_found()),
        RollbackOutcome::NotPossible(why) => {
            let refusal = Refusal::new(ErrorCode::RollbackNotPossible, format!("Rollback refused: {why}"), "Nothing was changed.");
            audit::human_action(services, &e.tenant_id, actor, "lynx.executions.rollback", RunStatus::Denied, input,
                json!({"error": refusal.message}), Some(refusal.message.clone())).await?;
            Err(refusal)
        }
    }
}

/// Moves a settlement intent to `to` (provider `manual`).
pub async fn mark_settlement(
    services: &Services,
    tenant: &TenantId,
    payment_id: PaymentId,
    to: &str,
    actor: &str,
    note: Option<String>,
) -> Result<SettlementRecord, Refusal> {
    // An operator moves an intent forward; `cancelled` is a reversal's, never set by hand.
    const SETTABLE: [SettlementStatus; 3] = [SettlementStatus::Processing, SettlementStatus::Completed, SettlementStatus::Failed];
    let to = SettlementStatus::parse(to).filter(|s| SETTABLE.contains(s)).ok_or_else(|| {
        let names: Vec<&str> = SETTABLE.iter().map(|s| s.as_str()).collect();
        Refusal::invalid_input("status", format!("must be one of {}", names.join(", ")))
    })?;
    let now = services.clock.now();
    let outcome = services.store.set_settlement_status(tenant, payment_id, to, actor, note.as_deref(), now).await?;
    let record = match outcome {
        SettlementChange::Done(r) => *r,
        SettlementChange::NotFound => {
            return Err(Refusal::new(ErrorCode::NotFound, format!("No settlement intent for payment {payment_id} in tenant {tenant}"), "List settlements with `lynx settlements list`."));
        }
        SettlementChange::WrongStatus(from) => {
            let next: Vec<&str> = from.next().iter().map(|s| s.as_str()).collect();
            return Err(Refusal::new(
                ErrorCode::InvalidTransition,
                format!("Settlement of payment {payment_id} cannot move from {from} to {to}"),
                if next.is_empty() { format!("{from} is final.") } else { format!("From {from} it can move to: {}.", next.join(", ")) },
            ));
        }
    };
    audit::human_action(services, tenant, actor, "lynx.settlements.mark", RunStatus::Succeeded,
        json!({"payment_id": payment_id, "status": to, "note": note}),
        json!({"payment_id": payment_id, "status": record.status, "payment_status": record.payment_status}), None).await?;
    Ok(record)
}

/// Switches the stored maintenance mode, seen by every instance on the database.
pub async fn set_maintenance(services: &Services, on: bool, actor: &str) -> Result<maintenance::MaintenanceState, Refusal> {
    let value = if on { "on" } else { "off" };
    services.store.put_setting(maintenance::SETTING_KEY, value, actor, services.clock.now()).await?;
    let system = TenantId::parse(SYSTEM_TENANT).expect("valid id");
    audit::human_action(services, &system, actor, &format!("lynx.maintenance.{value}"), RunStatus::Succeeded,
        json!({"maintenance_mode": value}), json!({"maintenance_mode": value}), None).await?;
    maintenance::state(services).await
}
