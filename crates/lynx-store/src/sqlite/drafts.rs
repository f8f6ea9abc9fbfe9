//! `lynx_drafts` and `lynx_draft_approvals`: inserting drafts (a repeated `request_id` finds the
//! original), and status changes that check their starting status inside the same transaction.

use chrono::{DateTime, Utc};
use lynx_model::{
    Risk, TenantId,
    draft::{DraftStatus, DraftType, Transition},
    records::{ApprovalRecord, RollbackAction, Decision, DecisionOutcome, DraftFilter, DraftInsert, DraftRecord, TransitionOutcome},
    store::StoreResult,
};
use serde_json::Value;
use rusqlite::{Connection, params};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use uuid::Uuid;

use super::row::{Columns, exec, query, ts};
use crate::error::{corrupt, map, map_rusqlite};

pub(super) const COLUMNS: &str = "draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, \
    updated_at, source_context, recommended_approvers, preview_markdown, request_id, request_fingerprint, response_payload, \
    submitted_at, submitted_by, approved_at, approved_by, rejected_at, rejected_by, rejection_reason, cancelled_at, cancelled_by";

pub(super) fn json(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(corrupt)
}

fn risk(s: &str) -> StoreResult<Risk> {
    match s {
        "low" => Ok(Risk::Low),
        "medium" => Ok(Risk::Medium),
        "high" => Ok(Risk::High),
        other => Err(corrupt(format!("unknown risk_level {other:?}"))),
    }
}

pub(super) fn status(s: &str) -> StoreResult<DraftStatus> {
    DraftStatus::parse(s).ok_or_else(|| corrupt(format!("unknown draft status {s:?}")))
}

pub(super) fn from_row(r: &impl Columns) -> StoreResult<DraftRecord> {
    let draft_type = r.text("draft_type")?;
    let approvers: Vec<String> = serde_json::from_str(&r.text("recommended_approvers")?).map_err(corrupt)?;
    Ok(DraftRecord {
        draft_id: super::uuid(&r.text("draft_id")?)?,
        tenant_id: super::tenant(r.text("tenant_id")?)?,
        draft_type: DraftType::parse(&draft_type).ok_or_else(|| corrupt(format!("unknown draft_type {draft_type:?}")))?,
        payload: json(&r.text("payload")?)?,
        status: status(&r.text("status")?)?,
        risk_level: risk(&r.text("risk_level")?)?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        source_context: json(&r.text("source_context")?)?,
        recommended_approvers: approvers,
        preview_markdown: r.text("preview_markdown")?,
        request_id: r.opt_text("request_id")?,
        request_fingerprint: r.opt_text("request_fingerprint")?,
        response_payload: r.opt_text("response_payload")?.map(|t| json(&t)).transpose()?,
        submitted_at: r.opt_time("submitted_at")?,
        submitted_by: r.opt_text("submitted_by")?,
        approved_at: r.opt_time("approved_at")?,
        approved_by: r.opt_text("approved_by")?,
        rejected_at: r.opt_time("rejected_at")?,
        rejected_by: r.opt_text("rejected_by")?,
        rejection_reason: r.opt_text("rejection_reason")?,
        cancelled_at: r.opt_time("cancelled_at")?,
        cancelled_by: r.opt_text("cancelled_by")?,
    })
}

const INSERT: &str = "INSERT INTO lynx_drafts (draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, \
    updated_at, source_context, recommended_approvers, preview_markdown, request_id, request_fingerprint, response_payload, \
    submitted_at, submitted_by, approved_at, approved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

/// Inserts one draft; 1 if inserted, 0 if its `request_id` was already taken.
fn insert_row(conn: &Connection, d: &DraftRecord) -> StoreResult<usize> {
    let approvers = serde_json::to_string(&d.recommended_approvers).map_err(corrupt)?;
    conn.prepare_cached(INSERT)
        .and_then(|mut q| {
            q.execute(params![
                d.draft_id.to_string(),
                d.tenant_id.as_str(),
                d.draft_type.as_str(),
                d.payload.to_string(),
                d.status.as_str(),
                d.risk_level.as_str(),
                d.created_by,
                ts(&d.created_at),
                ts(&d.updated_at),
                d.source_context.to_string(),
                approvers,
                d.preview_markdown,
                d.request_id,
                d.request_fingerprint,
                d.response_payload.as_ref().map(Value::to_string),
                d.submitted_at.as_ref().map(ts),
                d.submitted_by,
                d.approved_at.as_ref().map(ts),
                d.approved_by,
            ])
        })
        .map_err(map_rusqlite)
}

pub(super) fn import(conn: &Connection, drafts: &[DraftRecord]) -> StoreResult<u64> {
    let mut n = 0;
    for d in drafts {
        n += insert_row(conn, d)? as u64;
    }
    Ok(n)
}

pub(super) fn insert(conn: &Connection, d: &DraftRecord) -> StoreResult<DraftInsert> {
    if insert_row(conn, d)? == 1 {
        return Ok(DraftInsert::Inserted);
    }
    let request_id = d.request_id.as_deref().ok_or_else(|| corrupt("draft insert conflicted without a request_id"))?;
    let existing = one(conn, &format!("SELECT {COLUMNS} FROM lynx_drafts WHERE tenant_id = ? AND request_id = ?"), params![d.tenant_id.as_str(), request_id])?;
    match existing {
        Some(existing) => Ok(DraftInsert::Existing(Box::new(existing))),
        None => Err(corrupt("draft insert conflicted but no draft holds the request_id")),
    }
}

/// At most one draft, read inside the writer's transaction.
fn one(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Option<DraftRecord>> {
    Ok(query(conn, sql, args, |r| from_row(r))?.into_iter().next())
}

pub(super) async fn get(pool: &SqlitePool, tenant: Option<&TenantId>, id: Uuid) -> StoreResult<Option<DraftRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_drafts WHERE draft_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)"
    )))
    .bind(id.to_string())
    .bind(tenant.map(|t| t.as_str().to_string()))
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

fn get_in(conn: &Connection, tenant: &TenantId, id: Uuid) -> StoreResult<Option<DraftRecord>> {
    one(conn, &format!("SELECT {COLUMNS} FROM lynx_drafts WHERE draft_id = ? AND tenant_id = ?"), params![id.to_string(), tenant.as_str()])
}

/// The tenant's draft made with `request_id`.
pub(super) async fn by_request(db: &SqlitePool, tenant: &TenantId, request_id: &str) -> StoreResult<Option<DraftRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE tenant_id = ? AND request_id = ?")))
        .bind(tenant.as_str())
        .bind(request_id)
        .fetch_optional(db)
        .await
        .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool, tenant: Option<&TenantId>, f: &DraftFilter) -> StoreResult<Vec<DraftRecord>> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE 1 = 1"));
    if let Some(t) = tenant {
        q.push(" AND tenant_id = ").push_bind(t.as_str().to_string());
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(t) = f.draft_type {
        q.push(" AND draft_type = ").push_bind(t.as_str());
    }
    if let Some((at, id)) = f.before {
        q.push(" AND (created_at < ").push_bind(at).push(" OR (created_at = ").push_bind(at);
        q.push(" AND draft_id < ").push_bind(id.to_string()).push("))");
    }
    q.push(" ORDER BY created_at DESC, draft_id DESC LIMIT ").push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn approvals(pool: &SqlitePool, tenant: &TenantId, id: Uuid) -> StoreResult<Vec<ApprovalRecord>> {
    let rows = sqlx::query(
        "SELECT draft_id, tenant_id, approver_id, decision, notes, created_at FROM lynx_draft_approvals \
         WHERE tenant_id = ? AND draft_id = ? ORDER BY created_at, approver_id",
    )
    .bind(tenant.as_str())
    .bind(id.to_string())
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter()
        .map(|r| {
            let decision: String = r.try_get("decision").map_err(map)?;
            Ok(ApprovalRecord {
                draft_id: super::uuid(&r.try_get::<String, _>("draft_id").map_err(map)?)?,
                tenant_id: super::tenant(r.try_get("tenant_id").map_err(map)?)?,
                approver_id: r.try_get("approver_id").map_err(map)?,
                decision: if decision == "APPROVED" { Decision::Approved } else { Decision::Rejected },
                notes: r.try_get("notes").map_err(map)?,
                created_at: r.try_get("created_at").map_err(map)?,
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn decide(
    conn: &Connection,
    tenant: &TenantId,
    id: Uuid,
    approver: &str,
    decision: Decision,
    note: Option<&str>,
    required: u32,
    at: DateTime<Utc>,
) -> StoreResult<DecisionOutcome> {
    let Some(draft) = get_in(conn, tenant, id)? else {
        return Ok(DecisionOutcome::NotFound);
    };
    if draft.status != DraftStatus::Submitted {
        return Ok(DecisionOutcome::WrongStatus(draft.status));
    }
    let (id_text, tenant_text, at) = (id.to_string(), tenant.as_str(), ts(&at));
    let inserted = exec(
        conn,
        "INSERT INTO lynx_draft_approvals (draft_id, tenant_id, approver_id, decision, notes, created_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        params![id_text, tenant_text, approver, decision.as_str(), note, at],
    )?;
    if inserted == 0 {
        return Ok(DecisionOutcome::AlreadyDecided);
    }
    let approvals: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM lynx_draft_approvals WHERE tenant_id = ? AND draft_id = ? AND decision = 'APPROVED'")
        .and_then(|mut q| q.query_row(params![tenant_text, id_text], |r| r.get(0)))
        .map_err(map_rusqlite)?;
    match decision {
        Decision::Rejected => exec(
            conn,
            "UPDATE lynx_drafts SET status = 'REJECTED', rejected_at = ?, rejected_by = ?, rejection_reason = ?, updated_at = ? \
             WHERE tenant_id = ? AND draft_id = ?",
            params![at, approver, note, at, tenant_text, id_text],
        )?,
        Decision::Approved if approvals >= i64::from(required) => exec(
            conn,
            "UPDATE lynx_drafts SET status = 'APPROVED', approved_at = ?, approved_by = ?, updated_at = ? \
             WHERE tenant_id = ? AND draft_id = ?",
            params![at, approver, at, tenant_text, id_text],
        )?,
        Decision::Approved => exec(
            conn,
            "UPDATE lynx_drafts SET updated_at = ? WHERE tenant_id = ? AND draft_id = ?",
            params![at, tenant_text, id_text],
        )?,
    };
    let draft = get_in(conn, tenant, id)?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    Ok(DecisionOutcome::Recorded { draft: Box::new(draft), approvals: approvals as u32 })
}

pub(super) fn transition(
    conn: &Connection,
    tenant: &TenantId,
    id: Uuid,
    transition: Transition,
    by: &str,
    at: DateTime<Utc>,
) -> StoreResult<TransitionOutcome> {
    let Some(draft) = get_in(conn, tenant, id)? else {
        return Ok(TransitionOutcome::NotFound);
    };
    if !transition.allowed_from(draft.status) {
        return Ok(TransitionOutcome::WrongStatus(draft.status));
    }
    match transition {
        Transition::Cancel => {
            let at = ts(&at);
            exec(
                conn,
                "UPDATE lynx_drafts SET status = 'CANCELLED', cancelled_at = ?, cancelled_by = ?, updated_at = ? WHERE tenant_id = ? AND draft_id = ?",
                params![at, by, at, tenant.as_str(), id.to_string()],
            )?;
        }
        Transition::Reset | Transition::Unsubmit => return_to_draft(conn, tenant, id, by, at)?,
        other => return Err(corrupt(format!("transition {other:?} is applied by its own operation"))),
    }
    let draft = get_in(conn, tenant, id)?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    Ok(TransitionOutcome::Done(Box::new(draft)))
}

/// Back to `DRAFT` as if never submitted: decisions are forgotten and the submit that moved it is marked
/// rolled back, so submitting again is a new, allowed execution. Payments and publications stay.
pub(super) fn return_to_draft(conn: &Connection, tenant: &TenantId, id: Uuid, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
    let (id, tenant, at) = (id.to_string(), tenant.as_str(), ts(&at));
    exec(
        conn,
        "UPDATE lynx_drafts SET status = 'DRAFT', submitted_at = NULL, submitted_by = NULL, approved_at = NULL, approved_by = NULL, \
         rejected_at = NULL, rejected_by = NULL, rejection_reason = NULL, cancelled_at = NULL, cancelled_by = NULL, updated_at = ? \
         WHERE tenant_id = ? AND draft_id = ?",
        params![at, tenant, id],
    )?;
    exec(conn, "DELETE FROM lynx_draft_approvals WHERE tenant_id = ? AND draft_id = ?", params![tenant, id])?;
    exec(
        conn,
        "UPDATE lynx_executions SET rolled_back_at = ?, rolled_back_by = ? WHERE tenant_id = ? AND draft_id = ? \
         AND status = 'SUCCEEDED' AND rolled_back_at IS NULL AND json_extract(rollback_instructions, '$.action') = ?",
        params![at, by, tenant, id, RollbackAction::ReturnToDraft.as_str()],
    )?;
    Ok(())
}
