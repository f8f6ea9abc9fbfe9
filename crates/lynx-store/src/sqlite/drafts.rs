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
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, sqlite::SqliteRow};
use uuid::Uuid;

use crate::error::{corrupt, map};

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

pub(super) fn from_row(r: &SqliteRow) -> StoreResult<DraftRecord> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(map);
    let o = |c: &str| r.try_get::<Option<String>, _>(c).map_err(map);
    let t = |c: &str| r.try_get::<Option<DateTime<Utc>>, _>(c).map_err(map);
    let draft_type = s("draft_type")?;
    let approvers: Vec<String> = serde_json::from_str(&s("recommended_approvers")?).map_err(corrupt)?;
    Ok(DraftRecord {
        draft_id: super::uuid(&s("draft_id")?)?,
        tenant_id: super::tenant(s("tenant_id")?)?,
        draft_type: DraftType::parse(&draft_type).ok_or_else(|| corrupt(format!("unknown draft_type {draft_type:?}")))?,
        payload: json(&s("payload")?)?,
        status: status(&s("status")?)?,
        risk_level: risk(&s("risk_level")?)?,
        created_by: s("created_by")?,
        created_at: r.try_get("created_at").map_err(map)?,
        updated_at: r.try_get("updated_at").map_err(map)?,
        source_context: json(&s("source_context")?)?,
        recommended_approvers: approvers,
        preview_markdown: s("preview_markdown")?,
        request_id: o("request_id")?,
        request_fingerprint: o("request_fingerprint")?,
        response_payload: o("response_payload")?.map(|t| json(&t)).transpose()?,
        submitted_at: t("submitted_at")?,
        submitted_by: o("submitted_by")?,
        approved_at: t("approved_at")?,
        approved_by: o("approved_by")?,
        rejected_at: t("rejected_at")?,
        rejected_by: o("rejected_by")?,
        rejection_reason: o("rejection_reason")?,
        cancelled_at: t("cancelled_at")?,
        cancelled_by: o("cancelled_by")?,
    })
}

const INSERT: &str = "INSERT INTO lynx_drafts (draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, \
    updated_at, source_context, recommended_approvers, preview_markdown, request_id, request_fingerprint, response_payload, \
    submitted_at, submitted_by, approved_at, approved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

fn bind_insert<'q>(d: &'q DraftRecord) -> StoreResult<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>> {
    Ok(sqlx::query(INSERT)
        .bind(d.draft_id.to_string())
        .bind(d.tenant_id.as_str())
        .bind(d.draft_type.as_str())
        .bind(d.payload.to_string())
        .bind(d.status.as_str())
        .bind(d.risk_level.as_str())
        .bind(&d.created_by)
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(d.source_context.to_string())
        .bind(serde_json::to_string(&d.recommended_approvers).map_err(corrupt)?)
        .bind(&d.preview_markdown)
        .bind(&d.request_id)
        .bind(&d.request_fingerprint)
        .bind(d.response_payload.as_ref().map(Value::to_string))
        .bind(d.submitted_at)
        .bind(&d.submitted_by)
        .bind(d.approved_at)
        .bind(&d.approved_by))
}

pub(super) async fn import(tx: &mut SqliteConnection, drafts: &[DraftRecord]) -> StoreResult<u64> {
    let mut n = 0;
    for d in drafts {
        n += bind_insert(d)?.execute(&mut *tx).await.map_err(map)?.rows_affected();
    }
    Ok(n)
}

pub(super) async fn insert(tx: &mut SqliteConnection, d: &DraftRecord) -> StoreResult<DraftInsert> {
    let done = bind_insert(d)?.execute(&mut *tx).await.map_err(map)?;
    if done.rows_affected() == 1 {
        return Ok(DraftInsert::Inserted);
    }
    let request_id = d.request_id.as_deref().ok_or_else(|| corrupt("draft insert conflicted without a request_id"))?;
    match by_request(&mut *tx, &d.tenant_id, request_id).await? {
        Some(existing) => Ok(DraftInsert::Existing(Box::new(existing))),
        None => Err(corrupt("draft insert conflicted but no draft holds the request_id")),
    }
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

async fn get_in(conn: &mut SqliteConnection, tenant: &TenantId, id: Uuid) -> StoreResult<Option<DraftRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE draft_id = ? AND tenant_id = ?")))
        .bind(id.to_string())
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

/// The tenant's draft made with `request_id`; inside the creating transaction or straight from the pool.
pub(super) async fn by_request<'c>(
    db: impl sqlx::Executor<'c, Database = Sqlite>,
    tenant: &TenantId,
    request_id: &str,
) -> StoreResult<Option<DraftRecord>> {
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
pub(super) async fn decide(
    tx: &mut SqliteConnection,
    tenant: &TenantId,
    id: Uuid,
    approver: &str,
    decision: Decision,
    note: Option<&str>,
    required: u32,
    at: DateTime<Utc>,
) -> StoreResult<DecisionOutcome> {
    let Some(draft) = get_in(&mut *tx, tenant, id).await? else {
        return Ok(DecisionOutcome::NotFound);
    };
    if draft.status != DraftStatus::Submitted {
        return Ok(DecisionOutcome::WrongStatus(draft.status));
    }
    let inserted = sqlx::query(
        "INSERT INTO lynx_draft_approvals (draft_id, tenant_id, approver_id, decision, notes, created_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(id.to_string())
    .bind(tenant.as_str())
    .bind(approver)
    .bind(decision.as_str())
    .bind(note)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    if inserted.rows_affected() == 0 {
        return Ok(DecisionOutcome::AlreadyDecided);
    }
    let approvals: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM lynx_draft_approvals WHERE tenant_id = ? AND draft_id = ? AND decision = 'APPROVED'",
    )
    .bind(tenant.as_str())
    .bind(id.to_string())
    .fetch_one(&mut *tx)
    .await
    .map_err(map)?;
    match decision {
        Decision::Rejected => {
            sqlx::query(
                "UPDATE lynx_drafts SET status = 'REJECTED', rejected_at = ?, rejected_by = ?, rejection_reason = ?, updated_at = ? \
                 WHERE tenant_id = ? AND draft_id = ?",
            )
            .bind(at)
            .bind(approver)
            .bind(note)
            .bind(at)
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        Decision::Approved if approvals >= i64::from(required) => {
            sqlx::query(
                "UPDATE lynx_drafts SET status = 'APPROVED', approved_at = ?, approved_by = ?, updated_at = ? \
                 WHERE tenant_id = ? AND draft_id = ?",
            )
            .bind(at)
            .bind(approver)
            .bind(at)
            .bind(tenant.as_str())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        Decision::Approved => {
            sqlx::query("UPDATE lynx_drafts SET updated_at = ? WHERE tenant_id = ? AND draft_id = ?")
                .bind(at)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
    }
    let draft = get_in(&mut *tx, tenant, id).await?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    Ok(DecisionOutcome::Recorded { draft: Box::new(draft), approvals: approvals as u32 })
}

pub(super) async fn transition(
    tx: &mut SqliteConnection,
    tenant: &TenantId,
    id: Uuid,
    transition: Transition,
    by: &str,
    at: DateTime<Utc>,
) -> StoreResult<TransitionOutcome> {
    let Some(draft) = get_in(&mut *tx, tenant, id).await? else {
        return Ok(TransitionOutcome::NotFound);
    };
    if !transition.allowed_from(draft.status) {
        return Ok(TransitionOutcome::WrongStatus(draft.status));
    }
    match transition {
        Transition::Cancel => {
            sqlx::query("UPDATE lynx_drafts SET status = 'CANCELLED', cancelled_at = ?, cancelled_by = ?, updated_at = ? WHERE tenant_id = ? AND draft_id = ?")
                .bind(at)
                .bind(by)
                .bind(at)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        Transition::Reset | Transition::Unsubmit => {
            return_to_draft(&mut *tx, tenant, id, by, at).await?;
        }
        other => return Err(corrupt(format!("transition {other:?} is applied by its own operation"))),
    }
    let draft = get_in(&mut *tx, tenant, id).await?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    Ok(TransitionOutcome::Done(Box::new(draft)))
}

/// Back to `DRAFT` as if never submitted: decisions are forgotten and the submit that moved it is marked
/// rolled back, so submitting again is a new, allowed execution. Payments and publications stay.
pub(super) async fn return_to_draft(conn: &mut SqliteConnection, tenant: &TenantId, id: Uuid, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE lynx_drafts SET status = 'DRAFT', submitted_at = NULL, submitted_by = NULL, approved_at = NULL, approved_by = NULL, \
         rejected_at = NULL, rejected_by = NULL, rejection_reason = NULL, cancelled_at = NULL, cancelled_by = NULL, updated_at = ? \
         WHERE tenant_id = ? AND draft_id = ?",
    )
    .bind(at)
    .bind(tenant.as_str())
    .bind(id.to_string())
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    sqlx::query("DELETE FROM lynx_draft_approvals WHERE tenant_id = ? AND draft_id = ?")
        .bind(tenant.as_str())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await
        .map_err(map)?;
    sqlx::query(
        "UPDATE lynx_executions SET rolled_back_at = ?, rolled_back_by = ? WHERE tenant_id = ? AND draft_id = ? \
         AND status = 'SUCCEEDED' AND rolled_back_at IS NULL AND json_extract(rollback_instructions, '$.action') = ?",
    )
    .bind(at)
    .bind(by)
    .bind(tenant.as_str())
    .bind(id.to_string())
    .bind(RollbackAction::ReturnToDraft.as_str())
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    Ok(())
}
