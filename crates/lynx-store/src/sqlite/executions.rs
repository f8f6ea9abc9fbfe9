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
use rusqlite::{Connection, params};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use uuid::Uuid;

use super::drafts::{json as parse_json, return_to_draft, status as draft_status};
use super::row::{Columns, exec, query, ts};
use crate::error::{corrupt, map, map_rusqlite};

const COLUMNS: &str = "execution_id, draft_id, tool_id, tenant_id, actor_id, status, result_payload, created_at, completed_at, \
    error_message, rollback_instructions, rolled_back_at, rolled_back_by, request_id, request_fingerprint, explicit_approval, source_context";

fn from_row(r: &impl Columns) -> StoreResult<ExecutionRecord> {
    let status = r.text("status")?;
    Ok(ExecutionRecord {
        execution_id: super::uuid(&r.text("execution_id")?)?,
        draft_id: super::uuid(&r.text("draft_id")?)?,
        tool_id: r.text("tool_id")?,
        tenant_id: super::tenant(r.text("tenant_id")?)?,
        actor_id: r.text("actor_id")?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt(format!("unknown execution status {status:?}")))?,
        result_payload: r.opt_text("result_payload")?.map(|t| parse_json(&t)).transpose()?,
        created_at: r.time("created_at")?,
        completed_at: r.opt_time("completed_at")?,
        error_message: r.opt_text("error_message")?,
        rollback_instructions: r.opt_text("rollback_instructions")?.map(|t| parse_json(&t)).transpose()?,
        rolled_back_at: r.opt_time("rolled_back_at")?,
        rolled_back_by: r.opt_text("rolled_back_by")?,
        request_id: r.opt_text("request_id")?,
        request_fingerprint: r.opt_text("request_fingerprint")?,
        explicit_approval: r.flag("explicit_approval")?,
        source_context: parse_json(&r.text("source_context")?)?,
    })
}

/// Executions read inside the writer's transaction.
fn all(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Vec<ExecutionRecord>> {
    query(conn, sql, args, |r| from_row(r))
}

fn one(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Option<ExecutionRecord>> {
    Ok(all(conn, sql, args)?.into_iter().next())
}

/// One text column of at most one row, inside the writer's transaction.
fn scalar(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Option<String>> {
    Ok(query(conn, sql, args, |r| r.get(0).map_err(map_rusqlite))?.into_iter().next())
}

fn get_in(conn: &Connection, tenant: &TenantId, id: Uuid) -> StoreResult<Option<ExecutionRecord>> {
    one(conn, &format!("SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = ? AND tenant_id = ?"), params![id.to_string(), tenant.as_str()])
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

// `+created_at` in the ORDER BYs below: without statistics SQLite would rather walk the tenant's
// (tenant_id, created_at) index to avoid a sort — every execution of the tenant, on every cell call —
// than look up the draft's few rows by (tenant_id, draft_id) and sort those. The `+` takes the sort
// column out of the index choice.
pub(super) fn live_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = ? AND draft_id = ? \
         AND status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL ORDER BY +created_at"
    )
}

pub(super) async fn live(pool: &SqlitePool, tenant: &TenantId, draft: Uuid) -> StoreResult<Vec<ExecutionRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(live_sql()))
    .bind(tenant.as_str())
    .bind(draft.to_string())
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) fn claim(conn: &Connection, e: &ExecutionRecord) -> StoreResult<Claim> {
    if let Some(request_id) = &e.request_id {
        let seen = one(
            conn,
            &format!("SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = ? AND tool_id = ? AND request_id = ?"),
            params![e.tenant_id.as_str(), e.tool_id, request_id],
        )?;
        if let Some(seen) = seen {
            return Ok(Claim::RequestSeen(Box::new(seen)));
        }
    }
    let inserted = exec(
        conn,
        &format!(
            "INSERT INTO lynx_executions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 'STARTED', NULL, ?, NULL, NULL, NULL, NULL, NULL, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING"
        ),
        params![
            e.execution_id.to_string(),
            e.draft_id.to_string(),
            e.tool_id,
            e.tenant_id.as_str(),
            e.actor_id,
            ts(&e.created_at),
            e.request_id,
            e.request_fingerprint,
            e.explicit_approval,
            e.source_context.to_string(),
        ],
    )?;
    if inserted == 1 {
        return Ok(Claim::Claimed);
    }
    let holder = one(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = ? AND draft_id = ? AND tool_id = ? \
             AND status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL"
        ),
        params![e.tenant_id.as_str(), e.draft_id.to_string(), e.tool_id],
    )?
    .ok_or_else(|| corrupt("execution claim conflicted but no live execution holds it"))?;
    Ok(Claim::Taken(Box::new(holder)))
}

pub(super) fn complete(
    conn: &Connection,
    e: &ExecutionRecord,
    effect: &Effect,
    result: &Value,
    rollback: &Value,
    at: DateTime<Utc>,
) -> StoreResult<Completion> {
    let (tenant, draft, execution, at) = (e.tenant_id.as_str(), e.draft_id.to_string(), e.execution_id.to_string(), ts(&at));
    let current = scalar(conn, "SELECT status FROM lynx_executions WHERE execution_id = ? AND tenant_id = ?", params![execution, tenant])?;
    match current.as_deref() {
        Some("STARTED") => {}
        Some(other) => return Ok(Completion::ClaimLost(RunStatus::parse(other).unwrap_or(RunStatus::Failed))),
        None => return Err(corrupt("completing an execution that was never claimed")),
    }
    let (from, to) = effect_transition(effect);
    let moved = exec(
        conn,
        "UPDATE lynx_drafts SET status = ?1, updated_at = ?2, \
         submitted_at = CASE WHEN ?1 = 'SUBMITTED' THEN ?2 ELSE submitted_at END, \
         submitted_by = CASE WHEN ?1 = 'SUBMITTED' THEN ?3 ELSE submitted_by END \
         WHERE tenant_id = ?4 AND draft_id = ?5 AND status = ?6",
        params![to.as_str(), at, e.actor_id, tenant, draft, from.as_str()],
    )?;
    if moved == 0 {
        let now = scalar(conn, "SELECT status FROM lynx_drafts WHERE tenant_id = ? AND draft_id = ?", params![tenant, draft])?
            .ok_or_else(|| corrupt("the execution's draft vanished"))?;
        return Ok(Completion::DraftMoved(draft_status(&now)?));
    }
    match effect {
        Effect::Submit => {}
        Effect::Publish(w) => {
            exec(
                conn,
                "INSERT INTO lynx_workflows (workflow_id, tenant_id, draft_id, execution_id, name, workflow_kind, steps, status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
                params![w.workflow_id.to_string(), tenant, draft, execution, w.name, w.workflow_kind, w.steps.to_string(), at, at],
            )?;
        }
        Effect::Pay(p) => {
            exec(
                conn,
                "INSERT INTO lynx_payments (payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending_settlement', ?, ?)",
                params![p.payment_id.to_string(), tenant, draft, execution, p.vendor_id, p.amount.to_string(), p.currency, p.due_date, at, at],
            )?;
            exec(
                conn,
                "INSERT INTO settlement_intents (payment_id, tenant_id, status, provider, created_at, updated_at, metadata) \
                 VALUES (?, ?, 'queued', 'none', ?, ?, ?)",
                params![
                    p.payment_id.to_string(),
                    tenant,
                    at,
                    at,
                    json!({"execution_id": e.execution_id, "draft_id": e.draft_id, "history": []}).to_string()
                ],
            )?;
        }
    }
    exec(
        conn,
        "UPDATE lynx_executions SET status = 'SUCCEEDED', completed_at = ?, result_payload = ?, rollback_instructions = ? \
         WHERE execution_id = ? AND status = 'STARTED'",
        params![at, result.to_string(), rollback.to_string(), execution],
    )?;
    let done = get_in(conn, &e.tenant_id, e.execution_id)?.ok_or_else(|| corrupt("execution vanished"))?;
    Ok(Completion::Succeeded(Box::new(done)))
}

pub(super) fn fail(conn: &Connection, tenant: &TenantId, id: Uuid, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
    exec(
        conn,
        "UPDATE lynx_executions SET status = 'FAILED', error_message = ?, completed_at = ? \
         WHERE execution_id = ? AND tenant_id = ? AND status = 'STARTED'",
        params![error, ts(&at), id.to_string(), tenant.as_str()],
    )?;
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
    let order = if f.draft_id.is_some() { " ORDER BY +created_at DESC, execution_id DESC LIMIT " } else { " ORDER BY created_at DESC, execution_id DESC LIMIT " };
    q.push(order).push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) fn clear_stuck(conn: &Connection, before: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<Vec<ExecutionRecord>> {
    all(
        conn,
        &format!(
            "UPDATE lynx_executions SET status = 'FAILED', error_message = 'Manual intervention: execution stuck', completed_at = ? \
             WHERE status = 'STARTED' AND created_at < ? RETURNING {COLUMNS}"
        ),
        params![ts(&at), ts(&before)],
    )
}

pub(super) fn rollback(conn: &Connection, tenant: &TenantId, id: Uuid, by: &str, at: DateTime<Utc>) -> StoreResult<RollbackOutcome> {
    let Some(e) = get_in(conn, tenant, id)? else {
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
    let (draft, at_text) = (e.draft_id.to_string(), ts(&at));
    match action {
        Some(RollbackAction::ReturnToDraft) => {
            let status = scalar(conn, "SELECT status FROM lynx_drafts WHERE tenant_id = ? AND draft_id = ?", params![tenant.as_str(), draft])?
                .ok_or_else(|| corrupt("the execution's draft vanished"))?;
            if status != "SUBMITTED" {
                return Ok(RollbackOutcome::NotPossible(format!(
                    "the draft has moved on to {status}; only a SUBMITTED draft can be returned to DRAFT"
                )));
            }
            return_to_draft(conn, tenant, e.draft_id, by, at)?;
        }
        Some(RollbackAction::RetireWorkflow) => {
            let workflow = instructions["workflow_id"].as_str().unwrap_or_default();
            exec(
                conn,
                "UPDATE lynx_workflows SET status = 'retired', updated_at = ? WHERE tenant_id = ? AND workflow_id = ?",
                params![at_text, tenant.as_str(), workflow],
            )?;
        }
        Some(RollbackAction::ReversePayment) => {
            let payment = instructions["payment_id"].as_str().unwrap_or_default().to_string();
            let settlement = scalar(conn, "SELECT status FROM settlement_intents WHERE tenant_id = ? AND payment_id = ?", params![tenant.as_str(), payment])?;
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
            exec(
                conn,
                "UPDATE lynx_payments SET status = 'reversed', updated_at = ? WHERE tenant_id = ? AND payment_id = ?",
                params![at_text, tenant.as_str(), payment],
            )?;
            exec(
                conn,
                "UPDATE settlement_intents SET status = 'cancelled', updated_at = ?, \
                 metadata = json_set(metadata, '$.reversal', json(?)) WHERE tenant_id = ? AND payment_id = ?",
                params![
                    at_text,
                    json!({"reversed_at": at, "reversed_by": by, "execution_id": id}).to_string(),
                    tenant.as_str(),
                    payment
                ],
            )?;
        }
        None => return Ok(RollbackOutcome::NotPossible(format!("execution {id} carries no rollback instructions Lynx can carry out"))),
    }
    exec(conn, "UPDATE lynx_executions SET rolled_back_at = ?, rolled_back_by = ? WHERE execution_id = ?", params![at_text, by, id.to_string()])?;
    let done = get_in(conn, tenant, id)?.ok_or_else(|| corrupt("execution vanished"))?;
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
