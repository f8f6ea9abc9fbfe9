//! `lynx_drafts` and `lynx_draft_approvals`: inserting drafts (a repeated `request_id` finds the
//! original), the approval decision, and status changes that check their starting status inside the
//! same transaction, with the draft row locked where the engine locks rows (`FOR UPDATE`).

use chrono::{DateTime, Utc};
use lynx_model::{
    DraftId, Risk, TenantId,
    draft::{DraftStatus, DraftType, Transition},
    payload::DraftPayload,
    records::{ApprovalRecord, Decision, DecisionOutcome, DraftFilter, DraftForTool, DraftInsert, DraftRecord, RollbackAction, SpendCap, TransitionOutcome},
    store::StoreResult,
    webhook::WebhookEventType,
};
use serde_json::Value;

use crate::{
    db::{self, Changes, Db},
    error::corrupt,
    ops::{executions, limits, webhooks::{self, About, Audience}},
    row::Row,
    sql::Query,
};

pub(crate) const COLUMNS: &str = "draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, \
    updated_at, source_context, recommended_approvers, preview_markdown, request_id, request_fingerprint, response_payload, \
    submitted_at, submitted_by, decision_due_at, approved_at, approved_by, rejected_at, rejected_by, rejection_reason, \
    cancelled_at, cancelled_by";

fn risk(s: &str) -> Option<Risk> {
    match s {
        "low" => Some(Risk::Low),
        "medium" => Some(Risk::Medium),
        "high" => Some(Risk::High),
        _ => None,
    }
}

pub(crate) fn draft(mut r: Row) -> StoreResult<DraftRecord> {
    let draft_type = r.parsed("draft_type", DraftType::parse)?;
    Ok(DraftRecord {
        draft_id: r.id("draft_id")?,
        tenant_id: r.tenant("tenant_id")?,
        draft_type,
        payload: DraftPayload::from_json(draft_type, r.json("payload")?).map_err(corrupt)?,
        status: r.parsed("status", DraftStatus::parse)?,
        risk_level: r.parsed("risk_level", risk)?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        source_context: r.json("source_context")?,
        recommended_approvers: serde_json::from_value(r.json("recommended_approvers")?).map_err(corrupt)?,
        preview_markdown: r.text("preview_markdown")?,
        request_id: r.opt_text("request_id")?,
        request_fingerprint: r.opt_text("request_fingerprint")?,
        response_payload: r.opt_json("response_payload")?,
        submitted_at: r.opt_time("submitted_at")?,
        submitted_by: r.opt_text("submitted_by")?,
        decision_due_at: r.opt_time("decision_due_at")?,
        approved_at: r.opt_time("approved_at")?,
        approved_by: r.opt_text("approved_by")?,
        rejected_at: r.opt_time("rejected_at")?,
        rejected_by: r.opt_text("rejected_by")?,
        rejection_reason: r.opt_text("rejection_reason")?,
        cancelled_at: r.opt_time("cancelled_at")?,
        cancelled_by: r.opt_text("cancelled_by")?,
    })
}

/// Inserts one draft; 1 if inserted, 0 if its `request_id` was already taken.
async fn insert_row(db: &mut dyn Db, d: &DraftRecord) -> StoreResult<u64> {
    let approvers = serde_json::to_value(&d.recommended_approvers).map_err(corrupt)?;
    let q = Query::new(
        "INSERT INTO lynx_drafts (draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, \
         updated_at, source_context, recommended_approvers, preview_markdown, request_id, request_fingerprint, response_payload, \
         submitted_at, submitted_by, decision_due_at, approved_at, approved_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT DO NOTHING",
    )
    .bind(d.draft_id)
    .bind(&d.tenant_id)
    .bind(d.draft_type.as_str())
    .bind(d.payload.to_json())
    .bind(d.status.as_str())
    .bind(d.risk_level.as_str())
    .bind(&d.created_by)
    .bind(d.created_at)
    .bind(d.updated_at)
    .bind(&d.source_context)
    .bind(approvers)
    .bind(&d.preview_markdown)
    .bind(d.request_id.as_deref())
    .bind(d.request_fingerprint.as_deref())
    .bind(d.response_payload.as_ref())
    .bind(d.submitted_at)
    .bind(d.submitted_by.as_deref())
    .bind(d.decision_due_at)
    .bind(d.approved_at)
    .bind(d.approved_by.as_deref());
    db.execute(&q).await
}

pub(crate) async fn import(db: &mut dyn Db, drafts: &[DraftRecord]) -> StoreResult<u64> {
    let mut n = 0;
    for d in drafts {
        n += insert_row(db, d).await?;
    }
    Ok(n)
}

/// Inserts a draft, or finds the one its `request_id` already made.
pub(crate) async fn insert(db: &mut dyn Db, d: &DraftRecord) -> StoreResult<DraftInsert> {
    if insert_row(db, d).await? == 1 {
        return Ok(DraftInsert::Inserted);
    }
    let request_id = d.request_id.as_deref().ok_or_else(|| corrupt("draft insert conflicted without a request_id"))?;
    match by_request(db, &d.tenant_id, request_id).await? {
        Some(existing) => Ok(DraftInsert::Existing(Box::new(existing))),
        None => Err(corrupt("draft insert conflicted but no draft holds the request_id")),
    }
}

/// `insert`, within the creator's daily spend limit: the amount is counted first (under the counter's
/// row lock), and undone with the write if the insert turns out to be a replay of a concurrent call.
pub(crate) async fn insert_within(db: &mut dyn Db, d: &DraftRecord, cap: &SpendCap) -> StoreResult<Changes<DraftInsert>> {
    if let Some(request_id) = d.request_id.as_deref()
        && let Some(existing) = by_request(db, &d.tenant_id, request_id).await?
    {
        return Ok(Changes::Keep(DraftInsert::Existing(Box::new(existing))));
    }
    if let Err(totals) = limits::spend(db, &d.tenant_id, cap).await? {
        return Ok(Changes::Keep(DraftInsert::OverLimit(totals)));
    }
    Ok(match insert(db, d).await? {
        DraftInsert::Inserted => Changes::Keep(DraftInsert::Inserted),
        replay => Changes::Undo(replay),
    })
}

pub(crate) async fn get(db: &mut dyn Db, tenant: Option<&TenantId>, id: DraftId) -> StoreResult<Option<DraftRecord>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE draft_id = $1 AND (CAST($2 AS TEXT) IS NULL OR tenant_id = $2)"))
        .bind(id)
        .bind(tenant);
    db::fetch_one_as(db, q, draft).await
}

/// The tenant's draft, how many of its executions by `tool` count (the exactly-once index's rows), and
/// how many approvals others than its creator recorded (a maker's own never counts).
pub(crate) async fn for_tool(db: &mut dyn Db, tenant: &TenantId, id: DraftId, tool: &str) -> StoreResult<Option<DraftForTool>> {
    // Inside the subqueries, `status` and `rolled_back_at` are the execution's: the innermost table wins.
    let q = Query::new(format!(
        "SELECT {COLUMNS}, (SELECT COUNT(*) FROM lynx_executions WHERE lynx_executions.tenant_id = lynx_drafts.tenant_id \
         AND lynx_executions.draft_id = lynx_drafts.draft_id AND tool_id = $3 AND {}) AS claims, \
         (SELECT COUNT(*) FROM lynx_draft_approvals a WHERE a.tenant_id = lynx_drafts.tenant_id AND a.draft_id = lynx_drafts.draft_id \
         AND a.decision = 'APPROVED' AND a.approver_id <> lynx_drafts.created_by) AS approvals \
         FROM lynx_drafts WHERE draft_id = $1 AND tenant_id = $2",
        executions::counting!()
    ))
    .bind(id)
    .bind(tenant)
    .bind(tool);
    let Some(mut row) = db::fetch_opt(db, q).await? else { return Ok(None) };
    let claims = u32::try_from(row.int("claims")?).map_err(corrupt)?;
    let approvals = u32::try_from(row.int("approvals")?).map_err(corrupt)?;
    Ok(Some(DraftForTool { draft: draft(row)?, claims, approvals }))
}

/// The tenant's draft, its row locked for the rest of the transaction.
async fn lock(db: &mut dyn Db, tenant: &TenantId, id: DraftId) -> StoreResult<Option<DraftRecord>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE draft_id = $1 AND tenant_id = $2/*pg  FOR UPDATE*/"))
        .bind(id)
        .bind(tenant);
    db::fetch_one_as(db, q, draft).await
}

pub(crate) async fn by_request(db: &mut dyn Db, tenant: &TenantId, request_id: &str) -> StoreResult<Option<DraftRecord>> {
    let q = Query::new(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE tenant_id = $1 AND request_id = $2")).bind(tenant).bind(request_id);
    db::fetch_one_as(db, q, draft).await
}

pub(crate) async fn list(db: &mut dyn Db, tenant: Option<&TenantId>, f: &DraftFilter) -> StoreResult<Vec<DraftRecord>> {
    let mut q = Query::new(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE 1 = 1"));
    if let Some(t) = tenant {
        q.push(" AND tenant_id = ").push_bind(t);
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(t) = f.draft_type {
        q.push(" AND draft_type = ").push_bind(t.as_str());
    }
    if let Some((at, id)) = f.before {
        q.push(" AND (created_at < ").push_bind(at).push(" OR (created_at = ").push_bind(at);
        q.push(" AND draft_id < ").push_bind(id).push("))");
    }
    q.push(" ORDER BY created_at DESC, draft_id DESC LIMIT ").push_bind(f.limit);
    db::fetch_all(db, q, draft).await
}

pub(crate) async fn approvals(db: &mut dyn Db, tenant: &TenantId, id: DraftId) -> StoreResult<Vec<ApprovalRecord>> {
    let q = Query::new(
        "SELECT draft_id, tenant_id, approver_id, decision, notes, created_at FROM lynx_draft_approvals \
         WHERE tenant_id = $1 AND draft_id = $2 ORDER BY created_at, approver_id",
    )
    .bind(tenant)
    .bind(id);
    db::fetch_all(db, q, |mut r| {
        Ok(ApprovalRecord {
            draft_id: r.id("draft_id")?,
            tenant_id: r.tenant("tenant_id")?,
            approver_id: r.text("approver_id")?,
            decision: r.parsed("decision", |d| match d {
                "APPROVED" => Some(Decision::Approved),
                "REJECTED" => Some(Decision::Rejected),
                _ => None,
            })?,
            notes: r.opt_text("notes")?,
            created_at: r.time("created_at")?,
        })
    })
    .await
}

/// One approver's decision on a `SUBMITTED` draft: one decision per approver (the primary key); a
/// rejection rejects; the `required`-th approval approves.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn decide(
    db: &mut dyn Db,
    tenant: &TenantId,
    id: DraftId,
    approver: &str,
    decision: Decision,
    note: Option<&str>,
    required: u32,
    at: DateTime<Utc>,
) -> StoreResult<DecisionOutcome> {
    // The decision is recorded only on a SUBMITTED draft of the tenant, and on PostgreSQL the same
    // statement locks the draft's row (SQLite's writer runs one write at a time). When nothing was
    // recorded, the draft, locked, says why.
    let q = Query::new(
        "INSERT INTO lynx_draft_approvals (draft_id, tenant_id, approver_id, decision, notes, created_at) \
         SELECT draft_id, tenant_id, $3, $4, $5, $6 FROM lynx_drafts WHERE draft_id = $1 AND tenant_id = $2 AND status = 'SUBMITTED'\
         /*pg  FOR UPDATE*/ ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(tenant)
    .bind(approver)
    .bind(decision.as_str())
    .bind(note)
    .bind(at);
    if db.execute(&q).await? == 0 {
        return Ok(match lock(db, tenant, id).await? {
            None => DecisionOutcome::NotFound,
            Some(current) if current.status != DraftStatus::Submitted => DecisionOutcome::WrongStatus(current.status),
            Some(_) => DecisionOutcome::AlreadyDecided,
        });
    }
    // The approvals are counted by the update that acts on them, not by a statement of their own: every
    // earlier decision on this draft committed before the insert above was granted the draft's lock, so
    // the update's snapshot (taken after) sees them all, and this transaction's own.
    let approved = "(SELECT COUNT(*) FROM lynx_draft_approvals a \
                    WHERE a.tenant_id = lynx_drafts.tenant_id AND a.draft_id = lynx_drafts.draft_id AND a.decision = 'APPROVED')";
    let update = match decision {
        Decision::Rejected => Query::new(
            "UPDATE lynx_drafts SET status = 'REJECTED', rejected_at = $1, rejected_by = $2, rejection_reason = $3, updated_at = $1 \
             WHERE tenant_id = $4 AND draft_id = $5",
        )
        .bind(at)
        .bind(approver)
        .bind(note),
        // The `required`-th approval approves.
        Decision::Approved => Query::new(format!(
            "UPDATE lynx_drafts SET status = CASE WHEN {approved} >= $3 THEN 'APPROVED' ELSE status END, \
             approved_at = CASE WHEN {approved} >= $3 THEN $1 ELSE approved_at END, \
             approved_by = CASE WHEN {approved} >= $3 THEN $2 ELSE approved_by END, updated_at = $1 \
             WHERE tenant_id = $4 AND draft_id = $5"
        ))
        .bind(at)
        .bind(approver)
        .bind(i64::from(required)),
    };
    let mut update = update.bind(tenant).bind(id);
    update.push(&format!(" RETURNING {COLUMNS}, {approved} AS approvals, {}", webhooks::audience_column("lynx_drafts")));
    let mut row = db::fetch_opt(db, update).await?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    let approvals = u32::try_from(row.int("approvals")?).map_err(corrupt)?;
    let audience = webhooks::audience(&mut row)?;
    let decided = draft(row)?;
    let event = match decision {
        Decision::Rejected => WebhookEventType::DraftRejected,
        Decision::Approved => WebhookEventType::DraftApproved,
    };
    let extra = serde_json::json!({"decided_by": approver});
    webhooks::publish_about(db, tenant, audience, event, About::Draft(&decided), Some((approvals, required)), extra, at).await?;
    Ok(DecisionOutcome::Recorded { draft: Box::new(decided), approvals })
}

/// Cancel, or return to `DRAFT` (reset, unsubmit), from a status the transition allows.
pub(crate) async fn transition(db: &mut dyn Db, tenant: &TenantId, id: DraftId, transition: Transition, by: &str, at: DateTime<Utc>) -> StoreResult<TransitionOutcome> {
    let Some(current) = lock(db, tenant, id).await? else {
        return Ok(TransitionOutcome::NotFound);
    };
    if !transition.allowed_from(current.status) {
        return Ok(TransitionOutcome::WrongStatus(current.status));
    }
    match transition {
        Transition::Cancel => {
            let q = Query::new(
                "UPDATE lynx_drafts SET status = 'CANCELLED', cancelled_at = $1, cancelled_by = $2, updated_at = $1 WHERE tenant_id = $3 AND draft_id = $4",
            )
            .bind(at)
            .bind(by)
            .bind(tenant)
            .bind(id);
            db.execute(&q).await?;
        }
        Transition::Reset | Transition::Unsubmit => return_to_draft(db, tenant, id, by, at).await?,
        other => return Err(corrupt(format!("transition {other:?} is applied by its own operation"))),
    }
    let moved = lock(db, tenant, id).await?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    if transition == Transition::Cancel {
        let extra = serde_json::json!({"cancelled_by": by});
        webhooks::publish_about(db, tenant, Audience::Unknown, WebhookEventType::DraftCancelled, About::Draft(&moved), None, extra, at).await?;
    }
    Ok(TransitionOutcome::Done(Box::new(moved)))
}

/// Back to `DRAFT` as if never submitted: decisions are forgotten and the submit that moved it is marked
/// rolled back, so submitting again is a new, allowed execution. Payments and publications stay.
pub(crate) async fn return_to_draft(db: &mut dyn Db, tenant: &TenantId, id: DraftId, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
    let q = Query::new(
        "UPDATE lynx_drafts SET status = 'DRAFT', submitted_at = NULL, submitted_by = NULL, decision_due_at = NULL, approved_at = NULL, approved_by = NULL, \
         rejected_at = NULL, rejected_by = NULL, rejection_reason = NULL, cancelled_at = NULL, cancelled_by = NULL, updated_at = $1 \
         WHERE tenant_id = $2 AND draft_id = $3",
    )
    .bind(at)
    .bind(tenant)
    .bind(id);
    db.execute(&q).await?;
    db::execute(db, Query::new("DELETE FROM lynx_draft_approvals WHERE tenant_id = $1 AND draft_id = $2").bind(tenant).bind(id)).await?;
    // The submit that moved it: its rollback instructions say so.
    let submits = db::fetch_all(
        db,
        Query::new(
            "SELECT execution_id, rollback_instructions FROM lynx_executions WHERE tenant_id = $1 AND draft_id = $2 \
             AND status = 'SUCCEEDED' AND rolled_back_at IS NULL",
        )
        .bind(tenant)
        .bind(id),
        |mut r| Ok((r.id::<lynx_model::ExecutionId>("execution_id")?, r.opt_json("rollback_instructions")?)),
    )
    .await?;
    let returns_to_draft = |i: &Option<Value>| i.as_ref().and_then(|i| i["action"].as_str()) == Some(RollbackAction::ReturnToDraft.as_str());
    for (execution_id, _) in submits.iter().filter(|(_, i)| returns_to_draft(i)) {
        let q = Query::new("UPDATE lynx_executions SET rolled_back_at = $1, rolled_back_by = $2 WHERE execution_id = $3").bind(at).bind(by).bind(*execution_id);
        db.execute(&q).await?;
    }
    Ok(())
}

/// Whether any `SUBMITTED` draft is past its decision deadline.
pub(crate) async fn any_overdue(db: &mut dyn Db, now: DateTime<Utc>) -> StoreResult<bool> {
    let q = Query::new("SELECT COUNT(*) AS n FROM (SELECT 1 FROM lynx_drafts WHERE status = 'SUBMITTED' AND decision_due_at < $1 LIMIT 1) AS due").bind(now);
    Ok(db::count(db, q).await? > 0)
}

/// Expires the drafts whose decision deadline passed: each `SUBMITTED` row is moved once, by one
/// guarded UPDATE under its row lock, whichever instance sweeps first; the others find nothing.
pub(crate) async fn expire(db: &mut dyn Db, now: DateTime<Utc>) -> StoreResult<Vec<DraftRecord>> {
    let due = db::fetch_all(
        db,
        Query::new("SELECT draft_id, tenant_id FROM lynx_drafts WHERE status = 'SUBMITTED' AND decision_due_at < $1 ORDER BY decision_due_at LIMIT 100").bind(now),
        |mut r| Ok((r.id::<DraftId>("draft_id")?, r.tenant("tenant_id")?)),
    )
    .await?;
    let mut expired = Vec::new();
    for (id, tenant) in due {
        let Some(current) = lock(db, &tenant, id).await? else { continue };
        let Some(due_at) = current.decision_due_at.filter(|d| current.status == DraftStatus::Submitted && *d < now) else { continue };
        let waited = current.submitted_at.map(|s| due_at - s).unwrap_or_default();
        let reason = format!("expired: no decision within {}", lynx_model::kernel::hours_text(waited.num_milliseconds() as f64 / 3_600_000.0));
        let q = Query::new(
            "UPDATE lynx_drafts SET status = 'REJECTED', rejected_at = $1, rejected_by = 'system', rejection_reason = $2, updated_at = $1 \
             WHERE tenant_id = $3 AND draft_id = $4 AND status = 'SUBMITTED'",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(&tenant)
        .bind(id);
        if db.execute(&q).await? == 0 {
            continue;
        }
        let done = lock(db, &tenant, id).await?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
        webhooks::publish_about(db, &tenant, Audience::Unknown, WebhookEventType::DraftExpired, About::Draft(&done), None, Value::Null, now).await?;
        expired.push(done);
    }
    Ok(expired)
}
