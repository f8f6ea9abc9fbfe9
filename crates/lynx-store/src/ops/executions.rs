//! `lynx_executions` with the effects they commit: `lynx_payments`, `settlement_intents` and
//! `lynx_workflows`. The claim insert meets the exactly-once partial unique index (on PostgreSQL a
//! concurrent insert waits for the other transaction, then does nothing); completion marks the claim
//! `SUCCEEDED` if it is still `STARTED`, moves the draft and applies the effect in one transaction,
//! undone whole when any step finds it must not, so a `FAILED` or stuck `STARTED` row always means
//! nothing was applied.

use chrono::{DateTime, Utc};
use lynx_model::{
    DraftId, ExecutionId, PaymentId, TenantId,
    records::{Claim, Completion, Effect, ExecutionCounts, ExecutionFilter, ExecutionRecord, RollbackAction, RollbackOutcome, SpendCap},
    store::{MonitoringFacts, StoreResult, effect_transition},
    vocab::{RunStatus, SettlementStatus},
    draft::DraftStatus,
    webhook::WebhookEventType,
};
use serde_json::{Value, json};

use crate::{
    db::{self, Changes, Db},
    error::corrupt,
    ops::{
        drafts::return_to_draft,
        limits,
        webhooks::{self, About, Audience},
    },
    row::Row,
    sql::Query,
};

const COLUMNS: &str = "execution_id, draft_id, tool_id, tenant_id, actor_id, status, result_payload, created_at, completed_at, \
    error_message, rollback_instructions, rolled_back_at, rolled_back_by, request_id, request_fingerprint, explicit_approval, source_context";

fn execution(mut r: Row) -> StoreResult<ExecutionRecord> {
    Ok(ExecutionRecord {
        execution_id: r.id("execution_id")?,
        draft_id: r.id("draft_id")?,
        tool_id: r.text("tool_id")?,
        tenant_id: r.tenant("tenant_id")?,
        actor_id: r.text("actor_id")?,
        status: r.parsed("status", RunStatus::parse)?,
        result_payload: r.opt_json("result_payload")?,
        created_at: r.time("created_at")?,
        completed_at: r.opt_time("completed_at")?,
        error_message: r.opt_text("error_message")?,
        rollback_instructions: r.opt_json("rollback_instructions")?,
        rolled_back_at: r.opt_time("rolled_back_at")?,
        rolled_back_by: r.opt_text("rolled_back_by")?,
        request_id: r.opt_text("request_id")?,
        request_fingerprint: r.opt_text("request_fingerprint")?,
        explicit_approval: r.flag("explicit_approval")?,
        source_context: r.json("source_context")?,
    })
}

async fn one(db: &mut dyn Db, q: Query<'_>) -> StoreResult<Option<ExecutionRecord>> {
    db::fetch_one_as(db, q, execution).await
}

async fn get_in(db: &mut dyn Db, tenant: &TenantId, id: ExecutionId, lock: bool) -> StoreResult<Option<ExecutionRecord>> {
    let lock = if lock { "/*pg  FOR UPDATE*/" } else { "" };
    one(db, Query::new(format!("SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = $1 AND tenant_id = $2{lock}")).bind(id).bind(tenant)).await
}

pub(crate) async fn for_request(db: &mut dyn Db, tenant: &TenantId, tool: &str, request_id: &str) -> StoreResult<Option<ExecutionRecord>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = $1 AND tool_id = $2 AND request_id = $3"))
        .bind(tenant)
        .bind(tool)
        .bind(request_id);
    one(db, q).await
}

/// Which executions count: the rows the exactly-once index holds (`STARTED` or `SUCCEEDED`, not rolled
/// back). A macro, so that constant statements can include it with `concat!`.
macro_rules! counting {
    () => {
        "status IN ('STARTED', 'SUCCEEDED') AND rolled_back_at IS NULL"
    };
}
pub(crate) use counting;

/// The draft's executions that count. `+created_at` on SQLite: without statistics it would rather walk
/// the tenant's (tenant_id, created_at) index to avoid a sort — every execution of the tenant, on every
/// cell call — than look up the draft's few rows by (tenant_id, draft_id) and sort those. The `+` takes
/// the sort column out of the index choice.
pub(crate) const LIVE: &str = concat!(
    "SELECT execution_id, draft_id, tool_id, tenant_id, actor_id, status, result_payload, created_at, \
    completed_at, error_message, rollback_instructions, rolled_back_at, rolled_back_by, request_id, request_fingerprint, \
    explicit_approval, source_context FROM lynx_executions WHERE tenant_id = $1 AND draft_id = $2 AND ",
    counting!(),
    " ORDER BY /*sqlite +*/created_at"
);

pub(crate) async fn live(db: &mut dyn Db, tenant: &TenantId, draft: DraftId) -> StoreResult<Vec<ExecutionRecord>> {
    db::fetch_all(db, Query::new(LIVE).bind(tenant).bind(draft), execution).await
}

/// Inserts the `STARTED` claim unless the `request_id` was used before, or another live execution of
/// the draft and tool holds the exactly-once index.
pub(crate) async fn claim(db: &mut dyn Db, e: &ExecutionRecord) -> StoreResult<Claim> {
    if let Some(request_id) = &e.request_id
        && let Some(seen) = for_request(db, &e.tenant_id, &e.tool_id, request_id).await?
    {
        return Ok(Claim::RequestSeen(Box::new(seen)));
    }
    let q = Query::new(
        "INSERT INTO lynx_executions (execution_id, draft_id, tool_id, tenant_id, actor_id, status, created_at, request_id, \
         request_fingerprint, explicit_approval, source_context) VALUES ($1, $2, $3, $4, $5, 'STARTED', $6, $7, $8, $9, $10) \
         ON CONFLICT DO NOTHING",
    )
    .bind(e.execution_id)
    .bind(e.draft_id)
    .bind(&e.tool_id)
    .bind(&e.tenant_id)
    .bind(&e.actor_id)
    .bind(e.created_at)
    .bind(e.request_id.as_deref())
    .bind(e.request_fingerprint.as_deref())
    .bind(e.explicit_approval)
    .bind(&e.source_context);
    if db.execute(&q).await? == 1 {
        return Ok(Claim::Claimed);
    }
    // Another transaction won one of the unique indexes: the request_id's, or the exactly-once one.
    if let Some(request_id) = &e.request_id
        && let Some(seen) = for_request(db, &e.tenant_id, &e.tool_id, request_id).await?
    {
        return Ok(Claim::RequestSeen(Box::new(seen)));
    }
    let holder = one(
        db,
        Query::new(format!(
            "SELECT {COLUMNS} FROM lynx_executions WHERE tenant_id = $1 AND draft_id = $2 AND tool_id = $3 AND {}",
            counting!()
        ))
        .bind(&e.tenant_id)
        .bind(e.draft_id)
        .bind(&e.tool_id),
    )
    .await?
    .ok_or_else(|| corrupt("execution claim conflicted but no live execution holds it"))?;
    Ok(Claim::Taken(Box::new(holder)))
}

/// Marks the claim `SUCCEEDED`, moves the draft and applies the effect — all or nothing: a claim an
/// operator already closed, a draft that moved meanwhile, or a daily limit reached, applies nothing.
///
/// The claim is closed first: its update locks the row and finds it still `STARTED` (or not) in one
/// round trip, where a locking read and a later update took two. When a later step finds a reason to
/// apply nothing, the write is undone (`Changes::Undo`), the claim's update with it.
pub(crate) async fn complete(
    db: &mut dyn Db,
    e: &ExecutionRecord,
    effect: &Effect,
    result: &Value,
    rollback: &Value,
    cap: Option<&SpendCap>,
    at: DateTime<Utc>,
) -> StoreResult<Changes<Completion>> {
    let (tenant, draft, execution_id) = (&e.tenant_id, e.draft_id, e.execution_id);
    let closed = Query::new(format!(
        "UPDATE lynx_executions SET status = 'SUCCEEDED', completed_at = $1, result_payload = $2, rollback_instructions = $3 \
         WHERE execution_id = $4 AND tenant_id = $5 AND status = 'STARTED' RETURNING {COLUMNS}, {}",
        webhooks::audience_column("lynx_executions")
    ))
    .bind(at)
    .bind(result)
    .bind(rollback)
    .bind(execution_id)
    .bind(tenant);
    let Some(mut row) = db::fetch_opt(db, closed).await? else {
        let now = db::text(db, Query::new("SELECT status FROM lynx_executions WHERE execution_id = $1 AND tenant_id = $2").bind(execution_id).bind(tenant))
            .await?
            .ok_or_else(|| corrupt("completing an execution that was never claimed"))?;
        return Ok(Changes::Undo(Completion::ClaimLost(RunStatus::parse(&now).unwrap_or(RunStatus::Failed))));
    };
    let audience = webhooks::audience(&mut row)?;
    let done = execution(row)?;
    // The tenant's daily limit, counted under its counter's row lock in this transaction: concurrent
    // executions on any instance wait for each other here, and none passes the limit.
    if let Some(cap) = cap
        && let Err(totals) = limits::spend(db, tenant, cap).await?
    {
        return Ok(Changes::Undo(Completion::OverLimit(totals)));
    }
    let (from, to) = effect_transition(effect);
    let submit = match effect {
        Effect::Submit(s) => Some(s),
        _ => None,
    };
    // The status is a guard, not a way in: PostgreSQL's generic plan, seeing `status = $7` as no less
    // selective than the key, walked the tenant's (tenant_id, status) index — every draft of that
    // status, and every dead index entry the status moves leave behind — to find this one row.
    // `status || ''` keeps that index out of the choice, so the primary key finds it.
    let moved = Query::new(
        "UPDATE lynx_drafts SET status = $1, updated_at = $2, \
         submitted_at = CASE WHEN $3 THEN $2 ELSE submitted_at END, submitted_by = CASE WHEN $3 THEN $4 ELSE submitted_by END, \
         decision_due_at = CASE WHEN $3 THEN $8 ELSE decision_due_at END \
         WHERE tenant_id = $5 AND draft_id = $6 AND status/*pg  || ''*/ = $7",
    )
    .bind(to.as_str())
    .bind(at)
    .bind(submit.is_some())
    .bind(&e.actor_id)
    .bind(tenant)
    .bind(draft)
    .bind(from.as_str())
    .bind(submit.map(|s| s.decision_due_at));
    if db.execute(&moved).await? == 0 {
        let now = db::text(db, Query::new("SELECT status FROM lynx_drafts WHERE tenant_id = $1 AND draft_id = $2").bind(tenant).bind(draft))
            .await?
            .ok_or_else(|| corrupt("the execution's draft vanished"))?;
        return Ok(Changes::Undo(Completion::DraftMoved(
            DraftStatus::parse(&now).ok_or_else(|| corrupt(format!("unknown draft status {now:?}")))?,
        )));
    }
    match effect {
        Effect::Submit(s) => {
            let approvals = Some((0, s.approvals_required));
            webhooks::publish_about(db, tenant, audience, WebhookEventType::DraftSubmitted, About::Id(draft), approvals, Value::Null, at).await?;
        }
        Effect::Publish(w) => {
            let q = Query::new(
                "INSERT INTO lynx_workflows (workflow_id, tenant_id, draft_id, execution_id, name, workflow_kind, steps, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8)",
            )
            .bind(w.workflow_id)
            .bind(tenant)
            .bind(draft)
            .bind(execution_id)
            .bind(&w.name)
            .bind(&w.workflow_kind)
            .bind(serde_json::to_value(&w.steps).map_err(corrupt)?)
            .bind(at);
            db.execute(&q).await?;
        }
        Effect::Pay(p) => {
            let q = Query::new(
                "INSERT INTO lynx_payments (payment_id, tenant_id, draft_id, execution_id, vendor_id, amount, currency, due_date, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending_settlement', $9, $9)",
            )
            .bind(p.payment_id)
            .bind(tenant)
            .bind(draft)
            .bind(execution_id)
            .bind(&p.vendor_id)
            .bind(p.amount)
            .bind(&p.currency)
            .bind(&p.due_date)
            .bind(at);
            db.execute(&q).await?;
            let q = Query::new(
                "INSERT INTO settlement_intents (payment_id, tenant_id, status, provider, created_at, updated_at, metadata) \
                 VALUES ($1, $2, 'queued', 'none', $3, $3, $4)",
            )
            .bind(p.payment_id)
            .bind(tenant)
            .bind(at)
            .bind(json!({"execution_id": execution_id, "draft_id": draft, "history": []}));
            db.execute(&q).await?;
        }
    }
    if submit.is_none() {
        let extra = json!({"execution_id": execution_id, "tool_id": e.tool_id, "result": result});
        webhooks::publish_about(db, tenant, audience, WebhookEventType::ExecutionSucceeded, About::Id(draft), None, extra, at).await?;
    }
    Ok(Changes::Keep(Completion::Succeeded(Box::new(done))))
}

pub(crate) async fn fail(db: &mut dyn Db, tenant: &TenantId, id: ExecutionId, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
    let q = Query::new(
        "UPDATE lynx_executions SET status = 'FAILED', error_message = $1, completed_at = $2 \
         WHERE execution_id = $3 AND tenant_id = $4 AND status = 'STARTED'",
    )
    .bind(error)
    .bind(at)
    .bind(id)
    .bind(tenant);
    if db.execute(&q).await? == 0 {
        return Ok(());
    }
    let failed = get_in(db, tenant, id, false).await?.ok_or_else(|| corrupt("execution vanished"))?;
    publish_failed(db, &failed, error, at).await
}

/// `execution.failed`, in the transaction that failed the execution.
async fn publish_failed(db: &mut dyn Db, failed: &ExecutionRecord, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
    let extra = json!({"execution_id": failed.execution_id, "tool_id": failed.tool_id, "error": error});
    webhooks::publish_about(db, &failed.tenant_id, Audience::Unknown, WebhookEventType::ExecutionFailed, About::Id(failed.draft_id), None, extra, at).await
}

pub(crate) async fn get(db: &mut dyn Db, tenant: Option<&TenantId>, id: ExecutionId) -> StoreResult<Option<ExecutionRecord>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_executions WHERE execution_id = $1 AND (CAST($2 AS TEXT) IS NULL OR tenant_id = $2)"))
        .bind(id)
        .bind(tenant);
    one(db, q).await
}

pub(crate) async fn list(db: &mut dyn Db, tenant: Option<&TenantId>, f: &ExecutionFilter) -> StoreResult<Vec<ExecutionRecord>> {
    let mut q = Query::new(format!("SELECT {COLUMNS} FROM lynx_executions WHERE 1 = 1"));
    if let Some(t) = tenant {
        q.push(" AND tenant_id = ").push_bind(t);
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(d) = f.draft_id {
        q.push(" AND draft_id = ").push_bind(d);
    }
    if let Some(t) = &f.tool_id {
        q.push(" AND tool_id = ").push_bind(t.as_str());
    }
    if let Some((at, id)) = f.before {
        q.push(" AND (created_at < ").push_bind(at).push(" OR (created_at = ").push_bind(at);
        q.push(" AND execution_id < ").push_bind(id).push("))");
    }
    // One draft's executions: by (tenant_id, draft_id), then sorted (see `LIVE`).
    let order = if f.draft_id.is_some() { " ORDER BY /*sqlite +*/created_at DESC, execution_id DESC LIMIT " } else { " ORDER BY created_at DESC, execution_id DESC LIMIT " };
    q.push(order).push_bind(f.limit);
    db::fetch_all(db, q, execution).await
}

/// Marks `STARTED` executions created before `before` as `FAILED`; returns them.
pub(crate) async fn clear_stuck(db: &mut dyn Db, before: DateTime<Utc>, at: DateTime<Utc>) -> StoreResult<Vec<ExecutionRecord>> {
    let q = Query::new(format!(
        "UPDATE lynx_executions SET status = 'FAILED', error_message = 'Manual intervention: execution stuck', completed_at = $1 \
         WHERE status = 'STARTED' AND created_at < $2 RETURNING {COLUMNS}"
    ))
    .bind(at)
    .bind(before);
    let cleared = db::fetch_all(db, q, execution).await?;
    for e in &cleared {
        publish_failed(db, e, "Manual intervention: execution stuck", at).await?;
    }
    Ok(cleared)
}

/// Carries out a `SUCCEEDED` execution's rollback instructions, or says why it cannot.
pub(crate) async fn rollback(db: &mut dyn Db, tenant: &TenantId, id: ExecutionId, by: &str, at: DateTime<Utc>) -> StoreResult<RollbackOutcome> {
    let Some(e) = get_in(db, tenant, id, true).await? else {
        return Ok(RollbackOutcome::NotFound);
    };
    if e.status != RunStatus::Succeeded {
        return Ok(RollbackOutcome::NotPossible(format!("execution {id} is {}: it applied no effect, so there is nothing to undo", e.status)));
    }
    if let (Some(when), Some(who)) = (e.rolled_back_at, &e.rolled_back_by) {
        return Ok(RollbackOutcome::NotPossible(format!("execution {id} was already rolled back at {when} by {who}")));
    }
    let instructions = e.rollback_instructions.clone().unwrap_or(Value::Null);
    let named = |key: &str| instructions[key].as_str().and_then(|v| uuid::Uuid::parse_str(v).ok()).ok_or_else(|| corrupt(format!("rollback names no {key}")));
    match instructions["action"].as_str().and_then(RollbackAction::parse) {
        Some(RollbackAction::ReturnToDraft) => {
            let q = Query::new("SELECT status FROM lynx_drafts WHERE tenant_id = $1 AND draft_id = $2/*pg  FOR UPDATE*/").bind(tenant).bind(e.draft_id);
            let status = db::text(db, q).await?.ok_or_else(|| corrupt("the execution's draft vanished"))?;
            if status != "SUBMITTED" {
                return Ok(RollbackOutcome::NotPossible(format!("the draft has moved on to {status}; only a SUBMITTED draft can be returned to DRAFT")));
            }
            return_to_draft(db, tenant, e.draft_id, by, at).await?;
        }
        Some(RollbackAction::RetireWorkflow) => {
            let workflow = named("workflow_id")?;
            let q = Query::new("UPDATE lynx_workflows SET status = 'retired', updated_at = $1 WHERE tenant_id = $2 AND workflow_id = $3").bind(at).bind(tenant).bind(workflow);
            db.execute(&q).await?;
        }
        Some(RollbackAction::ReversePayment) => {
            let payment = PaymentId(named("payment_id")?);
            let q = Query::new("SELECT status, metadata FROM settlement_intents WHERE tenant_id = $1 AND payment_id = $2/*pg  FOR UPDATE*/").bind(tenant).bind(payment);
            let intent = |mut r: Row| Ok((r.parsed("status", SettlementStatus::parse)?, r.json("metadata")?));
            let Some((status, mut metadata)) = db::fetch_one_as(db, q, intent).await? else {
                return Ok(RollbackOutcome::NotPossible(format!("payment {payment} has no settlement intent")));
            };
            if !status.reversible() {
                return Ok(RollbackOutcome::NotPossible(format!(
                    "payment {payment} cannot be reversed: its settlement is {status}{}",
                    if status == SettlementStatus::Completed { " (money has moved; reverse it with the bank and record a new payment)" } else { "" }
                )));
            }
            let q = Query::new("UPDATE lynx_payments SET status = 'reversed', updated_at = $1 WHERE tenant_id = $2 AND payment_id = $3").bind(at).bind(tenant).bind(payment);
            db.execute(&q).await?;
            // The intent is locked: its metadata is read, amended here, and written back whole.
            metadata["reversal"] = json!({"reversed_at": at, "reversed_by": by, "execution_id": id});
            let q = Query::new("UPDATE settlement_intents SET status = 'cancelled', updated_at = $1, metadata = $2 WHERE tenant_id = $3 AND payment_id = $4")
                .bind(at)
                .bind(metadata)
                .bind(tenant)
                .bind(payment);
            db.execute(&q).await?;
        }
        None => return Ok(RollbackOutcome::NotPossible(format!("execution {id} carries no rollback instructions Lynx can carry out"))),
    }
    let q = Query::new("UPDATE lynx_executions SET rolled_back_at = $1, rolled_back_by = $2 WHERE execution_id = $3").bind(at).bind(by).bind(id);
    db.execute(&q).await?;
    let done = get_in(db, tenant, id, false).await?.ok_or_else(|| corrupt("execution vanished"))?;
    Ok(RollbackOutcome::Done(Box::new(done)))
}

pub(crate) async fn counts(db: &mut dyn Db, tenant: Option<&TenantId>) -> StoreResult<ExecutionCounts> {
    let q = Query::new("SELECT status, COUNT(*) AS n FROM lynx_executions WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) GROUP BY status").bind(tenant);
    let rows = db::fetch_all(db, q, |mut r| Ok((r.text("status")?, r.int("n")?))).await?;
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

pub(crate) async fn monitoring(db: &mut dyn Db, tenant: Option<&TenantId>) -> StoreResult<MonitoringFacts> {
    let q = Query::new(
        "SELECT /*sqlite AVG((julianday(approved_at) - julianday(submitted_at)) * 86400.0)*/\
         /*pg EXTRACT(EPOCH FROM AVG(approved_at - submitted_at))::float8*/ AS mean FROM lynx_drafts \
         WHERE approved_at IS NOT NULL AND submitted_at IS NOT NULL AND (CAST($1 AS TEXT) IS NULL OR tenant_id = $1)",
    )
    .bind(tenant);
    let mean_approval_seconds = match db::fetch_opt(db, q).await? {
        Some(mut r) => r.opt_real("mean")?,
        None => None,
    };
    let q = Query::new("SELECT COUNT(*) FROM settlement_intents WHERE status = 'queued' AND (CAST($1 AS TEXT) IS NULL OR tenant_id = $1)").bind(tenant);
    let queued_settlements = db::count(db, q).await?;
    Ok(MonitoringFacts { executions: counts(db, tenant).await?, mean_approval_seconds, queued_settlements })
}
