//! `lynx_executions` and their effects on PostgreSQL. The claim insert meets the exactly-once partial
//! unique index (a concurrent insert waits for the other transaction, then does nothing); completion
//! locks the claim row and commits the effect with `SUCCEEDED`.

use chrono::{DateTime, Utc};
use lynx_model::{
    TenantId,
    records::{Claim, Completion, Effect, ExecutionCounts, ExecutionFilter, ExecutionRecord, RollbackAction, RollbackOutcome},
    store::{StoreResult, effect_transition},
    vocab::RunStatus,
};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row, postgres::PgRow, types::Json};
use uuid::Uuid;

use super::drafts::{return_to_draft, status as draft_status};
use crate::error::{corrupt, map};

const COLUMNS: &str = "execution_id, draft_id, tool_id, tenant_id, actor_id, status, result_payload, created_at, completed_at, \
    error_message, rollback_instructions, rolled_back_at, rolled_back_by, request_id, request_fingerprint, explicit_approval, source_context";

fn from_row(r: &PgRow) -> StoreResult<ExecutionRecord> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(map);
    let o = |c: &str| r.try_get::<Option<String>, _>(c).map_err(map);
    let oj = |c: &str| r.try_get::<Option<Json<Value>>, _>(c).map(|j| j.map(|j| j.0)).map_err(map);
    let status = s("status")?;
    Ok(ExecutionRecord {
        execution_id: r.try_get("execution_id").map_err(map)?,
        draft_id: r.try_get("draft_id").map_err(map)?,
        tool_id: s("tool_id")?,
        tenant_id: super::tenant(s("tenant_id")?)?,
        actor_id: s("actor_id")?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown execution status {status:?}")))?,
        result_payload: oj("result_payload")?,
        created_at: r.try_get("created_at").map_err(map)?,
        completed_at: r.try_get("completed_at").map_err(map)?,
        error_message: o("error_message")?,
        rollback_instructions: oj("rollback_instructions")?,
        rolled_back_at: r.try_get("rolled_back_at").map_err(map)?,
        rolled_back_by: o("rolled_back_by")?,
        request_id: o("request_id")?,
        request_fingerprint: o("request_fingerprint")?,
        explicit_approval: r.try_get("explicit_approval").map_err(map)?,
        source_context: r.try_get::<Json<Value>, _>("source_context").map(|j| j.0).map_err(map)?,
    })
}

async fn select_one(conn: &mut PgConnection, sql: &str, tenant: &TenantId, id: Uuid) -> StoreResult<Option<ExecutionRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(id).bind(tenant.as_str()).fetch_optional(&mut *conn).await.map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

async fn by_request_in(conn: &mut PgConnection, e: &ExecutionRecord, request_id: &str) -> StoreResult<Option<ExecutionRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = $1 AND tool_id = $2 AND request_id = $3"
    )))
    .bind(e.tenant_id.as_str())
    .bind(&e.tool_id)
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn for_request(pool: &PgPool, tenant: &TenantId, tool: &str, request_id: &str) -> StoreResult<Option<ExecutionRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = $1 AND tool_id = $2 AND request_id = $3"
    )))
    .bind(tenant.as_str())
    .bind(tool)
    .bind(request_id)
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn live(pool: &PgPool, tenant: &TenantId, draft: Uuid) -> StoreResult<Vec<ExecutionRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = $1 AND draft_id = $2 \
         AND status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL ORDER BY created_at"
    )))
    .bind(tenant.as_str())
    .bind(draft)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn claim(pool: &PgPool, e: &ExecutionRecord) -> StoreResult<Claim> {
    let mut tx = super::tenant_tx(pool, &e.tenant_id).await?;
    if let Some(request_id) = &e.request_id
        && let Some(seen) = by_request_in(&mut tx, e, request_id).await?
    {
        return Ok(Claim::RequestSeen(Box::new(seen)));
    }
    let inserted = sqlx::query(
        "INSERT INTO lynx_executions (execution_id, draft_id, tool_id, tenant_id, actor_id, status, created_at, request_id, \
         request_fingerprint, explicit_approval, source_context) VALUES ($1, $2, $3, $4, $5, 'STARTED', $6, $7, $8, $9, $10) \
         ON CONFLICT DO NOTHING",
    )
    .bind(e.execution_id)
    .bind(e.draft_id)
    .bind(&e.tool_id)
    .bind(e.tenant_id.as_str())
    .bind(&e.actor_id)
    .bind(e.created_at)
    .bind(&e.request_id)
    .bind(&e.request_fingerprint)
    .bind(e.explicit_approval)
    .bind(Json(&e.source_context))
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    if inserted.rows_affected() == 1 {
        tx.commit().await.map_err(map)?;
        return Ok(Claim::Claimed);
    }
    // Another transaction won one of the unique indexes: the request_id's, or the exactly-once one.
    if let Some(request_id) = &e.request_id
        && let Some(seen) = by_request_in(&mut tx, e, request_id).await?
    {
        return Ok(Claim::RequestSeen(Box::new(seen)));
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = $1 AND draft_id = $2 AND tool_id = $3 \
         AND status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL"
    )))
    .bind(e.tenant_id.as_str())
    .bind(e.draft_id)
    .bind(&e.tool_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map)?
    .ok_or_else(|| corrupt("execution claim conflicted but no live execution holds it"))?;
    Ok(Claim::Taken(Box::new(from_row(&row)?)))
}

pub(super) async fn complete(pool: &PgPool, e: &ExecutionRecord, effect: &Effect, result: &Value, rollback: &Value, at: DateTime<Utc>) -> StoreResult<Completion> {
    let tenant = e.tenant_id.as_str();
    let mut tx = super::tenant_tx(pool, &e.tenant_id).await?;
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM lynx_executions WHERE execution_id = $1 AND tenant_id = $2 FOR UPDATE")
        .bind(e.execution_id)
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
    let submitted = to.as_str() == "SUBMITTED";
    let moved = sqlx::query(
        "UPDATE lynx_drafts SET status = $1, updated_at = $2, \
         submitted_at = CASE WHEN $3 THEN $2 ELSE submitted_at END, submitted_by = CASE WHEN $3 THEN $4 ELSE submitted_by END \
         WHERE tenant_id = $5 AND draft_id = $6 AND status = $7",
    )
    .bind(to.as_str())
    .bind(at)
    .bind(submitted)
    .bind(&e.actor_id)
    .bind(tenant)
    .bind(e.draft_id)
    .bind(from.as_str())
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    if moved.rows_affected() == 0 {
        let now: String = sqlx::query_scalar("SELECT status FROM lynx_drafts WHERE tenant_id = $1 AND draft_id = $2")
            .bind(tenant)
            .bind(e.draft_id)
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8)",
            )
            .bind(w.workflow_id)
            .bind(tenant)
            .bind(e.draft_id)
            .bind(e.execution_id)
            .bind(&w.name)
            .bind(&w.workflow_kind)
            .bind(Json(&w.steps))
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        Effect::Pay(p) => {
            sqlx::query(
                "INSERT INTO lynx_payments (payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending_settlement', $9, $9)",
            )
            .bind(p.payment_id)
            .bind(tenant)
            .bind(e.draft_id)
            .bind(e.execution_id)
            .bind(&p.vendor_id)
            .bind(p.amount)
            .bind(&p.currency)
            .bind(&p.due_date)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
            sqlx::query(
                "INSERT INTO settlement_intents (payment_id, tenant_id, status, provider, created_at, updated_at, metadata) \
                 VALUES ($1, $2, 'queued', 'none', $3, $3, $4)",
            )
            .bind(p.payment_id)
            .bind(tenant)
            .bind(at)
            .bind(Json(json!({"execution_id": e.execution_id, "draft_id": e.draft_id, "history": []})))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
    }
    sqlx::query(
        "UPDATE lynx_executions SET status = 'SUCCEEDED', completed_at = $1, result_payload = $2, rollback_instructions = $3 \
         WHERE execution_id = $4 AND status = 'STARTED'",
    )
    .bind(at)
    .bind(Json(result))
    .bind(Json(rollback))
    .bind(e.execution_id)
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    let done = select_one(&mut tx, &format!("SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = $1 AND tenant_id = $2"), &e.tenant_id, e.execution_id)
        .await?
        .ok_or_else(|| corrupt("execution vanished"))?;
    tx.commit().await.map_err(map)?;
    Ok(Completion::Succeeded(Box::new(done)))
}

pub(super) async fn fail(pool: &PgPool, tenant: &TenantId, id: Uuid, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("UPDATE lynx_executions SET status = 'FAILED', error_message = $1, completed_at = $2 WHERE execution_id = $3 AND tenant_id = $4 AND status = 'STARTED'")
        .bind(error)
        .bind(at)
        .bind(id)
        .bind(tenant.as_str())
        .execute(pool)
        .await
        .map_err(map)?;
    Ok(())
}

pub(super) async fn get(pool: &PgPool, tenant: Option<&TenantId>, id: Uuid) -> StoreResult<Option<ExecutionRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(tenant.map(|t| t.as_str().to_string()))
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &PgPool, tenant: Option<&TenantId>, f: &ExecutionFilter) -> StoreResult<Vec<ExecutionRecord>> {
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM lynx_executions WHERE TRUE"));
    if let Some(t) = tenant {
        q.push(" AND tenant_id = ").push_bind(t.as_str().to_string());
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(d) = f.draft_id {
        q.push(" AND draft_id = ").push_bind(d);
    }
    if let Some(t) = &f.tool_id {
        q.push(" AND tool_id = ").push_bind(t.clone());
    }
    if let Some((at, id)) = f.before {
        q.push(" AND (created_at, execution_id) < (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY created_at DESC, execution_id DESC LIMIT ").push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn clear_stuck(pool: &PgPool, before: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<Vec<ExecutionRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE lynx_executions SET status = 'FAILED', error_message = 'Manual intervention: execution stuck', completed_at = $1 \
         WHERE status = 'STARTED' AND created_at < $2 RETURNING {COLUMNS}"
    )))
    .bind(at)
    .bind(before)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn rollback(pool: &PgPool, tenant: &TenantId, id: Uuid, by: &str, at: DateTime<Utc>) -> StoreResult<RollbackOutcome> {
    let mut tx = super::tenant_tx(pool, tenant).await?;
    let locked = format!("SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = $1 AND tenant_id = $2 FOR UPDATE");
    let Some(e) = select_one(&mut tx, &locked, tenant, id).await? else {
        return Ok(RollbackOutcome::NotFound);
    };
    if e.status != RunStatus::Succeeded {
        return Ok(RollbackOutcome::NotPossible(format!("execution {id} is {}: it applied no effect, so there is nothing to undo", e.status)));
    }
    if let (Some(when), Some(who)) = (e.rolled_back_at, &e.rolled_back_by) {
        return Ok(RollbackOutcome::NotPossible(format!("execution {id} was already rolled back at {when} by {who}")));
    }
    let instructions = e.rollback_instructions.clone().unwrap_or(Value::Null);
    match instructions["action"].as_str().and_then(RollbackAction::parse) {
        Some(RollbackAction::ReturnToDraft) => {
            let status: String = sqlx::query_scalar("SELECT status FROM lynx_drafts WHERE tenant_id = $1 AND draft_id = $2 FOR UPDATE")
                .bind(tenant.as_str())
                .bind(e.draft_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map)?;
            if status != "SUBMITTED" {
                return Ok(RollbackOutcome::NotPossible(format!("the draft has moved on to {status}; only a SUBMITTED draft can be returned to DRAFT")));
            }
            return_to_draft(&mut tx, tenant, e.draft_id, by, at).await?;
        }
        Some(RollbackAction::RetireWorkflow) => {
            let workflow = instructions["workflow_id"].as_str().and_then(|w| Uuid::parse_str(w).ok()).ok_or_else(|| corrupt("rollback names no workflow"))?;
            sqlx::query("UPDATE lynx_workflows SET status = 'retired', updated_at = $1 WHERE tenant_id = $2 AND workflow_id = $3")
                .bind(at)
                .bind(tenant.as_str())
                .bind(workflow)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        Some(RollbackAction::ReversePayment) => {
            let payment = instructions["payment_id"].as_str().and_then(|p| Uuid::parse_str(p).ok()).ok_or_else(|| corrupt("rollback names no payment"))?;
            let settlement: Option<String> = sqlx::query_scalar("SELECT status FROM settlement_intents WHERE tenant_id = $1 AND payment_id = $2 FOR UPDATE")
                .bind(tenant.as_str())
                .bind(payment)
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
            sqlx::query("UPDATE lynx_payments SET status = 'reversed', updated_at = $1 WHERE tenant_id = $2 AND payment_id = $3")
                .bind(at)
                .bind(tenant.as_str())
                .bind(payment)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            sqlx::query("UPDATE settlement_intents SET status = 'cancelled', updated_at = $1, metadata = metadata || jsonb_build_object('reversal', $2::jsonb) WHERE tenant_id = $3 AND payment_id = $4")
                .bind(at)
                .bind(Json(json!({"reversed_at": at, "reversed_by": by, "execution_id": id})))
                .bind(tenant.as_str())
                .bind(payment)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        None => return Ok(RollbackOutcome::NotPossible(format!("execution {id} carries no rollback instructions Lynx can carry out"))),
    }
    sqlx::query("UPDATE lynx_executions SET rolled_back_at = $1, rolled_back_by = $2 WHERE execution_id = $3")
        .bind(at)
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    let done = select_one(&mut tx, &format!("SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = $1 AND tenant_id = $2"), tenant, id)
        .await?
        .ok_or_else(|| corrupt("execution vanished"))?;
    tx.commit().await.map_err(map)?;
    Ok(RollbackOutcome::Done(Box::new(done)))
}

pub(super) async fn counts(pool: &PgPool, tenant: Option<&TenantId>) -> StoreResult<ExecutionCounts> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM lynx_executions WHERE ($1::text IS NULL OR tenant_id = $1) GROUP BY status")
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


pub(super) async fn monitoring(pool: &PgPool, tenant: Option<&TenantId>) -> StoreResult<lynx_model::store::MonitoringFacts> {
    let t = tenant.map(|t| t.as_str().to_string());
    let mean_approval_seconds: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM AVG(approved_at - submitted_at))::float8 FROM lynx_drafts \
         WHERE approved_at IS NOT NULL AND submitted_at IS NOT NULL AND ($1::text IS NULL OR tenant_id = $1)",
    )
    .bind(&t)
    .fetch_one(pool)
    .await
    .map_err(map)?;
    let queued_settlements: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued' AND ($1::text IS NULL OR tenant_id = $1)")
        .bind(&t)
        .fetch_one(pool)
        .await
        .map_err(map)?;
    Ok(lynx_model::store::MonitoringFacts { executions: counts(pool, tenant).await?, mean_approval_seconds, queued_settlements })
}
