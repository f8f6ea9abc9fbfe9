//! `lynx_executions` with the effects they commit: `lynx_payments`, `settlement_intents` and
//! `lynx_workflows`. The claim insert meets the exactly-once unique index; completion applies the
//! effect, moves the draft and marks `SUCCEEDED` in one transaction, so a `FAILED` or stuck `STARTED`
//! row always means nothing was applied.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    records::{
        Claim, Completion, Effect, ExecutionCounts, ExecutionFilter, ExecutionRecord, RollbackAction, RollbackOutcome,
    },
    store::{StoreResult, effect_transition},
    vocab::RunStatus,
};
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, sqlite::SqliteRow};
use uuid::Uuid;

use super::drafts::{json as parse_json, return_to_draft, status as draft_status};
use crate::error::{corrupt, map};

const COLUMNS: &str = "execution_id, draft_id, tool_id, tenant_id, actor_id, status, result_payload, created_at, completed_at, \
    error_message, rollback_instructions, rolled_back_at, rolled_back_by, request_id, request_fingerprint, explicit_approval, source_context";

fn from_row(r: &SqliteRow) -> StoreResult<ExecutionRecord> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(map);
    let o = |c: &str| r.try_get::<Option<String>, _>(c).map_err(map);
    let status = s("status")?;
    Ok(ExecutionRecord {
        execution_id: super::uuid(&s("execution_id")?)?,
        draft_id: super::uuid(&s("draft_id")?)?,
        tool_id: s("tool_id")?,
        tenant_id: super::tenant(s("tenant_id")?)?,
        actor_id: s("actor_id")?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown execution status {status:?}")))?,
        result_payload: o("result_payload")?.map(|t| parse_json(&t)).transpose()?,
        created_at: r.try_get("created_at").map_err(map)?,
        completed_at: r.try_get("completed_at").map_err(map)?,
        error_message: o("error_message")?,
        rollback_instructions: o("rollback_instructions")?.map(|t| parse_json(&t)).transpose()?,
        rolled_back_at: r.try_get("rolled_back_at").map_err(map)?,
        rolled_back_by: o("rolled_back_by")?,
        request_id: o("request_id")?,
        request_fingerprint: o("request_fingerprint")?,
        explicit_approval: r.try_get::<bool, _>("explicit_approval").map_err(map)?,
        source_context: parse_json(&s("source_context")?)?,
    })
}

async fn get_in(conn: &mut SqliteConnection, tenant: &TenantId, id: Uuid) -> StoreResult<Option<ExecutionRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = ? AND tenant_id = ?")))
        .bind(id.to_string())
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn for_request(pool: &SqlitePool, tenant: &TenantId, tool: &str, request_id: &str) -> StoreResult<Option<ExecutionRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = ? AND tool_id = ? AND request_id = ?"
    )))
    .bind(tenant.as_str())
    .bind(tool)
    .bind(request_id)
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn live(pool: &SqlitePool, tenant: &TenantId, draft: Uuid) -> StoreResult<Vec<ExecutionRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = ? AND draft_id = ? \
         AND status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL ORDER BY created_at"
    )))
    .bind(tenant.as_str())
    .bind(draft.to_string())
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn claim(tx: &mut SqliteConnection, e: &ExecutionRecord) -> StoreResult<Claim> {
    if let Some(request_id) = &e.request_id {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = ? AND tool_id = ? AND request_id = ?"
        )))
        .bind(e.tenant_id.as_str())
        .bind(&e.tool_id)
        .bind(request_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if let Some(row) = row {
            return Ok(Claim::RequestSeen(Box::new(from_row(&row)?)));
        }
    }
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO lynx_executions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 'STARTED', NULL, ?, NULL, NULL, NULL, NULL, NULL, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING"
    )))
    .bind(e.execution_id.to_string())
    .bind(e.draft_id.to_string())
    .bind(&e.tool_id)
    .bind(e.tenant_id.as_str())
    .bind(&e.actor_id)
    .bind(e.created_at)
    .bind(&e.request_id)
    .bind(&e.request_fingerprint)
    .bind(e.explicit_approval)
    .bind(e.source_context.to_string())
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Claimed);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = ? AND draft_id = ? AND tool_id = ? \
         AND status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL"
    )))
    .bind(e.tenant_id.as_str())
    .bind(e.draft_id.to_string())
    .bind(&e.tool_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map)?
    .ok_or_else(|| corrupt("execution claim conflicted but no live execution holds it"))?;
    Ok(Claim::Taken(Box::new(from_row(&row)?)))
}

pub(super) async fn complete(
    tx: &mut SqliteConnection,
    e: &ExecutionRecord,
    effect: &Effect,
    result: &Value,
    rollback: &Value,
    at: DateTime<Utc>,
) -> StoreResult<Completion> {
    let (tenant, draft) = (e.tenant_id.as_str(), e.draft_id.to_string());
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM lynx_executions WHERE execution_id = ? AND tenant_id = ?")
        .bind(e.execution_id.to_string())
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
    match current.as_deref() {
        Some("STARTED") => {}
        Some(other) => return Ok(Completion::ClaimLost(RunStatus::parse(other).unwrap_or(RunStatus::Failed))),
        None => return Err(corrupt("completing an execution that was never claimed")),
    }
    let (from, to) = effect_transition(effect);
    let moved = sqlx::query(
        "UPDATE lynx_drafts SET status = ?, updated_at = ?, \
         submitted_at = CASE WHEN ? = 'SUBMITTED' THEN ? ELSE submitted_at END, \
         submitted_by = CASE WHEN ? = 'SUBMITTED' THEN ? ELSE submitted_by END \
         WHERE tenant_id = ? AND draft_id = ? AND status = ?",
    )
    .bind(to.as_str())
    .bind(at)
    .bind(to.as_str())
    .bind(at)
    .bind(to.as_str())
    .bind(&e.actor_id)
    .bind(tenant)
    .bind(&draft)
    .bind(from.as_str())
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    if moved.rows_affected() == 0 {
        let now: String = sqlx::query_scalar("SELECT status FROM lynx_drafts WHERE tenant_id = ? AND draft_id = ?")
            .bind(tenant)
            .bind(&draft)
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
        return Ok(Completion::DraftMoved(draft_status(&now)?));
    }
    match effect {
        Effect::Submit => {}
        Effect::Publish(w) => {
            sqlx::query(
                "INSERT INTO lynx_workflows (workflow_id, tenant_id, draft_id, execution_id, name, workflow_kind, steps, status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
            )
            .bind(w.workflow_id.to_string())
            .bind(tenant)
            .bind(&draft)
            .bind(e.execution_id.to_string())
            .bind(&w.name)
            .bind(&w.workflow_kind)
            .bind(w.steps.to_string())
            .bind(at)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        Effect::Pay(p) => {
            sqlx::query(
                "INSERT INTO lynx_payments (payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending_settlement', ?, ?)",
            )
            .bind(p.payment_id.to_string())
            .bind(tenant)
            .bind(&draft)
            .bind(e.execution_id.to_string())
            .bind(&p.vendor_id)
            .bind(p.amount.to_string())
            .bind(&p.currency)
            .bind(&p.due_date)
            .bind(at)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            sqlx::query(
                "INSERT INTO settlement_intents (payment_id, tenant_id, status, provider, created_at, updated_at, metadata) \
                 VALUES (?, ?, 'queued', 'none', ?, ?, ?)",
            )
            .bind(p.payment_id.to_string())
            .bind(tenant)
            .bind(at)
            .bind(at)
            .bind(json!({"execution_id": e.execution_id, "draft_id": e.draft_id, "history": []}).to_string())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
    }
    sqlx::query(
        "UPDATE lynx_executions SET status = 'SUCCEEDED', completed_at = ?, result_payload = ?, rollback_instructions = ? \
         WHERE execution_id = ? AND status = 'STARTED'",
    )
    .bind(at)
    .bind(result.to_string())
    .bind(rollback.to_string())
    .bind(e.execution_id.to_string())
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    let done = get_in(&mut *tx, &e.tenant_id, e.execution_id).await?.ok_or_else(|| corrupt("execution vanished"))?;
    Ok(Completion::Succeeded(Box::new(done)))
}

pub(super) async fn fail(tx: &mut SqliteConnection, tenant: &TenantId, id: Uuid, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE lynx_executions SET status = 'FAILED', error_message = ?, completed_at = ? \
         WHERE execution_id = ? AND tenant_id = ? AND status = 'STARTED'",
    )
    .bind(error)
    .bind(at)
    .bind(id.to_string())
    .bind(tenant.as_str())
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    Ok(())
}

pub(super) async fn get(pool: &SqlitePool, tenant: Option<&TenantId>, id: Uuid) -> StoreResult<Option<ExecutionRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)"
    )))
    .bind(id.to_string())
    .bind(tenant.map(|t| t.as_str().to_string()))
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool, tenant: Option<&TenantId>, f: &ExecutionFilter) -> StoreResult<Vec<ExecutionRecord>> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM lynx_executions WHERE 1 = 1"));
    if let Some(t) = tenant {
        q.push(" AND tenant_id = ").push_bind(t.as_str().to_string());
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(d) = f.draft_id {
        q.push(" AND draft_id = ").push_bind(d.to_string());
    }
    if let Some(t) = &f.tool_id {
        q.push(" AND tool_id = ").push_bind(t.clone());
    }
    if let Some((at, id)) = f.before {
        q.push(" AND (created_at < ").push_bind(at).push(" OR (created_at = ").push_bind(at);
        q.push(" AND execution_id < ").push_bind(id.to_string()).push("))");
    }
    q.push(" ORDER BY created_at DESC, execution_id DESC LIMIT ").push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn clear_stuck(tx: &mut SqliteConnection, before: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<Vec<ExecutionRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE lynx_executions SET status = 'FAILED', error_message = 'Manual intervention: execution stuck', completed_at = ? \
         WHERE status = 'STARTED' AND created_at < ? RETURNING {COLUMNS}"
    )))
    .bind(at)
    .bind(before)
    .fetch_all(&mut *tx)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn rollback(tx: &mut SqliteConnection, tenant: &TenantId, id: Uuid, by: &str, at: DateTime<Utc>) -> StoreResult<RollbackOutcome> {
    let Some(e) = get_in(&mut *tx, tenant, id).await? else {
        return Ok(RollbackOutcome::NotFound);
    };
    if e.status != RunStatus::Succeeded {
        return Ok(RollbackOutcome::NotPossible(format!(
            "execution {id} is {}: it applied no effect, so there is nothing to undo",
            e.status
        )));
    }
    if let (Some(when), Some(who)) = (e.rolled_back_at, &e.rolled_back_by) {
        return Ok(RollbackOutcome::NotPossible(format!("execution {id} was already rolled back at {when} by {who}")));
    }
    let instructions = e.rollback_instructions.clone().unwrap_or(Value::Null);
    let action = instructions["action"].as_str().and_then(RollbackAction::parse);
    let draft = e.draft_id.to_string();
    match action {
        Some(RollbackAction::ReturnToDraft) => {
            let status: String = sqlx::query_scalar("SELECT status FROM lynx_drafts WHERE tenant_id = ? AND draft_id = ?")
                .bind(tenant.as_str())
                .bind(&draft)
                .fetch_one(&mut *tx)
                .await
                .map_err(map)?;
            if status != "SUBMITTED" {
                return Ok(RollbackOutcome::NotPossible(format!(
                    "the draft has moved on to {status}; only a SUBMITTED draft can be returned to DRAFT"
                )));
            }
            return_to_draft(&mut *tx, tenant, e.draft_id, by, at).await?;
        }
        Some(RollbackAction::RetireWorkflow) => {
            let workflow = instructions["workflow_id"].as_str().unwrap_or_default();
            sqlx::query("UPDATE lynx_workflows SET status = 'retired', updated_at = ? WHERE tenant_id = ? AND workflow_id = ?")
                .bind(at)
                .bind(tenant.as_str())
                .bind(workflow)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        Some(RollbackAction::ReversePayment) => {
            let payment = instructions["payment_id"].as_str().unwrap_or_default().to_string();
            let settlement: Option<String> = sqlx::query_scalar("SELECT status FROM settlement_intents WHERE tenant_id = ? AND payment_id = ?")
                .bind(tenant.as_str())
                .bind(&payment)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
            match settlement.as_deref() {
                Some("queued" | "failed") => {}
                Some(other) => {
                    return Ok(RollbackOutcome::NotPossible(format!(
                        "payment {payment} cannot be reversed: its settlement is {other}{}",
                        if other == "completed" { " (money has moved; reverse it with the bank and record a new payment)" } else { "" }
                    )));
                }
                None => return Ok(RollbackOutcome::NotPossible(format!("payment {payment} has no settlement intent"))),
            }
            sqlx::query("UPDATE lynx_payments SET status = 'reversed', updated_at = ? WHERE tenant_id = ? AND payment_id = ?")
                .bind(at)
                .bind(tenant.as_str())
                .bind(&payment)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            sqlx::query(
                "UPDATE settlement_intents SET status = 'cancelled', updated_at = ?, \
                 metadata = json_set(metadata, '$.reversal', json(?)) WHERE tenant_id = ? AND payment_id = ?",
            )
            .bind(at)
            .bind(json!({"reversed_at": at, "reversed_by": by, "execution_id": id}).to_string())
            .bind(tenant.as_str())
            .bind(&payment)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        None => return Ok(RollbackOutcome::NotPossible(format!("execution {id} carries no rollback instructions Lynx can carry out"))),
    }
    sqlx::query("UPDATE lynx_executions SET rolled_back_at = ?, rolled_back_by = ? WHERE execution_id = ?")
        .bind(at)
        .bind(by)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    let done = get_in(&mut *tx, tenant, id).await?.ok_or_else(|| corrupt("execution vanished"))?;
    Ok(RollbackOutcome::Done(Box::new(done)))
}

pub(super) async fn counts(pool: &SqlitePool, tenant: Option<&TenantId>) -> StoreResult<ExecutionCounts> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM lynx_executions WHERE (?1 IS NULL OR tenant_id = ?1) GROUP BY status")
            .bind(tenant.map(|t| t.as_str().to_string()))
            .fetch_all(pool)
            .await
            .map_err(map)?;
    let mut c = ExecutionCounts::default();
    for (status, n) in rows {
        match status.as_str() {
            "STARTED" => c.started = n,
            "SUCCEEDED" => c.succeeded = n,
            "FAILED" => c.failed = n,
            "DENIED" => c.denied = n,
            _ => {}
        }
    }
    Ok(c)
}

pub(super) async fn monitoring(pool: &SqlitePool, tenant: Option<&TenantId>) -> StoreResult<lynx_model::store::MonitoringFacts> {
    let t = tenant.map(|t| t.as_str().to_string());
    let mean_approval_seconds: Option<f64> = sqlx::query_scalar(
        "SELECT AVG((julianday(approved_at) - julianday(submitted_at)) * 86400.0) FROM lynx_drafts \
         WHERE approved_at IS NOT NULL AND submitted_at IS NOT NULL AND (?1 IS NULL OR tenant_id = ?1)",
    )
    .bind(&t)
    .fetch_one(pool)
    .await
    .map_err(map)?;
    let queued_settlements: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued' AND (?1 IS NULL OR tenant_id = ?1)")
        .bind(&t)
        .fetch_one(pool)
        .await
        .map_err(map)?;
    Ok(lynx_model::store::MonitoringFacts { executions: counts(pool, tenant).await?, mean_approval_seconds, queued_settlements })
}
