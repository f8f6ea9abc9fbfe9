//! `lynx_drafts` and `lynx_draft_approvals` on PostgreSQL. Status changes lock the draft row
//! (`FOR UPDATE`) inside a transaction narrowed to the draft's tenant.

use chrono::{DateTime, Utc};
use lynx_model::{
    Risk, TenantId,
    draft::{DraftStatus, DraftType, Transition},
    records::{ApprovalRecord, Decision, DecisionOutcome, DraftFilter, DraftInsert, DraftRecord, RollbackAction, TransitionOutcome},
    store::StoreResult,
};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row, types::Json, postgres::PgRow};
use uuid::Uuid;

use crate::error::{corrupt, map};

pub(super) const COLUMNS: &str = "draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, \
    updated_at, source_context, recommended_approvers, preview_markdown, request_id, request_fingerprint, response_payload, \
    submitted_at, submitted_by, approved_at, approved_by, rejected_at, rejected_by, rejection_reason, cancelled_at, cancelled_by";

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

fn from_row(r: &PgRow) -> StoreResult<DraftRecord> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(map);
    let o = |c: &str| r.try_get::<Option<String>, _>(c).map_err(map);
    let t = |c: &str| r.try_get::<Option<DateTime<Utc>>, _>(c).map_err(map);
    let j = |c: &str| r.try_get::<Json<Value>, _>(c).map(|j| j.0).map_err(map);
    let draft_type = s("draft_type")?;
    Ok(DraftRecord {
        draft_id: r.try_get("draft_id").map_err(map)?,
        tenant_id: super::tenant(s("tenant_id")?)?,
        draft_type: DraftType::parse(&draft_type).ok_or_else(|| corrupt(format!("unknown draft_type {draft_type:?}")))?,
        payload: j("payload")?,
        status: status(&s("status")?)?,
        risk_level: risk(&s("risk_level")?)?,
        created_by: s("created_by")?,
        created_at: r.try_get("created_at").map_err(map)?,
        updated_at: r.try_get("updated_at").map_err(map)?,
        source_context: j("source_context")?,
        recommended_approvers: serde_json::from_value(j("recommended_approvers")?).map_err(corrupt)?,
        preview_markdown: s("preview_markdown")?,
        request_id: o("request_id")?,
        request_fingerprint: o("request_fingerprint")?,
        response_payload: r.try_get::<Option<Json<Value>>, _>("response_payload").map_err(map)?.map(|j| j.0),
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

fn bind_insert(d: &DraftRecord) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(
        "INSERT INTO lynx_drafts (draft_id, tenant_id, draft_type, payload, status, risk_level, created_by, created_at, \
         updated_at, source_context, recommended_approvers, preview_markdown, request_id, request_fingerprint, response_payload, \
         submitted_at, submitted_by, approved_at, approved_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT DO NOTHING",
    )
    .bind(d.draft_id)
    .bind(d.tenant_id.as_str())
    .bind(d.draft_type.as_str())
    .bind(Json(&d.payload))
    .bind(d.status.as_str())
    .bind(d.risk_level.as_str())
    .bind(&d.created_by)
    .bind(d.created_at)
    .bind(d.updated_at)
    .bind(Json(&d.source_context))
    .bind(Json(&d.recommended_approvers))
    .bind(&d.preview_markdown)
    .bind(&d.request_id)
    .bind(&d.request_fingerprint)
    .bind(d.response_payload.as_ref().map(Json))
    .bind(d.submitted_at)
    .bind(&d.submitted_by)
    .bind(d.approved_at)
    .bind(&d.approved_by)
}

pub(super) async fn import(pool: &PgPool, drafts: &[DraftRecord]) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(map)?;
    let mut n = 0;
    for d in drafts {
        n += bind_insert(d).execute(&mut *tx).await.map_err(map)?.rows_affected();
    }
    tx.commit().await.map_err(map)?;
    Ok(n)
}

pub(super) async fn insert(pool: &PgPool, d: &DraftRecord) -> StoreResult<DraftInsert> {
    let done = bind_insert(d).execute(pool).await.map_err(map)?;
    if done.rows_affected() == 1 {
        return Ok(DraftInsert::Inserted);
    }
    let request_id = d.request_id.as_deref().ok_or_else(|| corrupt("draft insert conflicted without a request_id"))?;
    match by_request(pool, &d.tenant_id, request_id).await? {
        Some(existing) => Ok(DraftInsert::Existing(Box::new(existing))),
        None => Err(corrupt("draft insert conflicted but no draft holds the request_id")),
    }
}

pub(super) async fn get(pool: &PgPool, tenant: Option<&TenantId>, id: Uuid) -> StoreResult<Option<DraftRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lynx_drafts WHERE draft_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(tenant.map(|t| t.as_str().to_string()))
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

async fn lock(conn: &mut PgConnection, tenant: &TenantId, id: Uuid) -> StoreResult<Option<DraftRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE draft_id = $1 AND tenant_id = $2 FOR UPDATE")))
        .bind(id)
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn by_request(pool: &PgPool, tenant: &TenantId, request_id: &str) -> StoreResult<Option<DraftRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE tenant_id = $1 AND request_id = $2")))
        .bind(tenant.as_str())
        .bind(request_id)
        .fetch_optional(pool)
        .await
        .map_err(map)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &PgPool, tenant: Option<&TenantId>, f: &DraftFilter) -> StoreResult<Vec<DraftRecord>> {
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM lynx_drafts WHERE TRUE"));
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
        q.push(" AND (created_at, draft_id) < (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY created_at DESC, draft_id DESC LIMIT ").push_bind(i64::from(f.limit));
    let rows = q.build().fetch_all(pool).await.map_err(map)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn approvals(pool: &PgPool, tenant: &TenantId, id: Uuid) -> StoreResult<Vec<ApprovalRecord>> {
    let rows = sqlx::query(
        "SELECT draft_id, tenant_id, approver_id, decision, notes, created_at FROM lynx_draft_approvals \
         WHERE tenant_id = $1 AND draft_id = $2 ORDER BY created_at, approver_id",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.iter()
        .map(|r| {
            let decision: String = r.try_get("decision").map_err(map)?;
            Ok(ApprovalRecord {
                draft_id: r.try_get("draft_id").map_err(map)?,
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
    pool: &PgPool,
    tenant: &TenantId,
    id: Uuid,
    approver: &str,
    decision: Decision,
    note: Option<&str>,
    required: u32,
    at: DateTime<Utc>,
) -> StoreResult<DecisionOutcome> {
    let mut tx = super::tenant_tx(pool, tenant).await?;
    let Some(draft) = lock(&mut tx, tenant, id).await? else {
        return Ok(DecisionOutcome::NotFound);
    };
    if draft.status != DraftStatus::Submitted {
        return Ok(DecisionOutcome::WrongStatus(draft.status));
    }
    let inserted = sqlx::query(
        "INSERT INTO lynx_draft_approvals (draft_id, tenant_id, approver_id, decision, notes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(id)
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
        "SELECT COUNT(*) FROM lynx_draft_approvals WHERE tenant_id = $1 AND draft_id = $2 AND decision = 'APPROVED'",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(map)?;
    let update = match decision {
        Decision::Rejected => sqlx::query(
            "UPDATE lynx_drafts SET status = 'REJECTED', rejected_at = $1, rejected_by = $2, rejection_reason = $3, updated_at = $1 \
             WHERE tenant_id = $4 AND draft_id = $5",
        )
        .bind(at)
        .bind(approver)
        .bind(note),
        Decision::Approved if approvals >= i64::from(required) => sqlx::query(
            "UPDATE lynx_drafts SET status = 'APPROVED', approved_at = $1, approved_by = $2, updated_at = $1 \
             WHERE tenant_id = $3 AND draft_id = $4",
        )
        .bind(at)
        .bind(approver),
        Decision::Approved => sqlx::query("UPDATE lynx_drafts SET updated_at = $1 WHERE tenant_id = $2 AND draft_id = $3").bind(at),
    };
    update.bind(tenant.as_str()).bind(id).execute(&mut *tx).await.map_err(map)?;
    let draft = lock(&mut tx, tenant, id).await?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    tx.commit().await.map_err(map)?;
    Ok(DecisionOutcome::Recorded { draft: Box::new(draft), approvals: approvals as u32 })
}

pub(super) async fn transition(pool: &PgPool, tenant: &TenantId, id: Uuid, transition: Transition, by: &str, at: DateTime<Utc>) -> StoreResult<TransitionOutcome> {
    let mut tx = super::tenant_tx(pool, tenant).await?;
    let Some(draft) = lock(&mut tx, tenant, id).await? else {
        return Ok(TransitionOutcome::NotFound);
    };
    if !transition.allowed_from(draft.status) {
        return Ok(TransitionOutcome::WrongStatus(draft.status));
    }
    match transition {
        Transition::Cancel => {
            sqlx::query("UPDATE lynx_drafts SET status = 'CANCELLED', cancelled_at = $1, cancelled_by = $2, updated_at = $1 WHERE tenant_id = $3 AND draft_id = $4")
                .bind(at)
                .bind(by)
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        Transition::Reset | Transition::Unsubmit => return_to_draft(&mut tx, tenant, id, by, at).await?,
        other => return Err(corrupt(format!("transition {other:?} is applied by its own operation"))),
    }
    let draft = lock(&mut tx, tenant, id).await?.ok_or_else(|| corrupt("draft vanished inside its transaction"))?;
    tx.commit().await.map_err(map)?;
    Ok(TransitionOutcome::Done(Box::new(draft)))
}

/// As on SQLite: back to `DRAFT`, decisions forgotten, the submit marked rolled back.
pub(super) async fn return_to_draft(conn: &mut PgConnection, tenant: &TenantId, id: Uuid, by: &str, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE lynx_drafts SET status = 'DRAFT', submitted_at = NULL, submitted_by = NULL, approved_at = NULL, approved_by = NULL, \
         rejected_at = NULL, rejected_by = NULL, rejection_reason = NULL, cancelled_at = NULL, cancelled_by = NULL, updated_at = $1 \
         WHERE tenant_id = $2 AND draft_id = $3",
    )
    .bind(at)
    .bind(tenant.as_str())
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    sqlx::query("DELETE FROM lynx_draft_approvals WHERE tenant_id = $1 AND draft_id = $2")
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(map)?;
    sqlx::query(
        "UPDATE lynx_executions SET rolled_back_at = $1, rolled_back_by = $2 WHERE tenant_id = $3 AND draft_id = $4 \
         AND status = 'SUCCEEDED' AND rolled_back_at IS NULL AND rollback_instructions->>'action' = $5",
    )
    .bind(at)
    .bind(by)
    .bind(tenant.as_str())
    .bind(id)
    .bind(RollbackAction::ReturnToDraft.as_str())
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    Ok(())
}
