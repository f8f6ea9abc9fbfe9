//! The execution protocol of cell tools (SPEC §4, checks 2–7), and the request-id replay rules shared
//! by the cluster and cell layers. Check 1 (maintenance) is the pipeline's second gate, check 8 its mode
//! gate, check 9 the tool's own; the claim and the atomic commit live in `ExecCtx`.

use lynx_model::{
    DraftId,
    ErrorCode, Principal, Refusal,
    draft::DraftStatus,
    records::{DraftForTool, DraftRecord, ExecutionRecord},
    vocab::RunStatus,
};
use serde_json::Value;

use crate::{services::Services, tool::ToolSpec};

pub fn draft_not_found(draft_id: DraftId, tenant: &lynx_model::TenantId) -> Refusal {
    Refusal::new(
        ErrorCode::DraftNotFound,
        format!("Draft not found or does not belong to tenant (draft_id: {draft_id}, tenant_id: {tenant})"),
        "Check the draft_id a cluster tool returned; drafts of other tenants cannot be used.",
    )
}

pub fn already_executed(draft_id: DraftId, by: Option<&ExecutionRecord>, status: DraftStatus) -> Refusal {
    let message = match by {
        Some(e) => format!("Draft has already been successfully executed by {} (execution_id: {})", e.tool_id, e.execution_id),
        None => format!("Draft has already been successfully executed (draft_id: {draft_id}, status: {})", status.lower()),
    };
    Refusal::new(
        ErrorCode::AlreadyExecuted,
        message,
        "This is expected: a draft executes exactly once. Create a new draft if the action is needed again.",
    )
}

/// A second submit of a draft already submitted: nothing to do, and nothing was executed — the words
/// must not read as "the action happened".
fn already_submitted(draft_id: DraftId, by: &ExecutionRecord, status: DraftStatus) -> Refusal {
    let hint = match status {
        DraftStatus::Approved => "Nothing to do: it is approved. Execute it with its cell tool (workflow.cell.draft.publish or vpm.cell.payment.execute).",
        DraftStatus::Rejected => "It was rejected; create a new draft if the action is still needed.",
        _ => "Nothing to do: it waits for an approver (dashboard, `lynx drafts approve` or POST /api/drafts/{id}/approve). Look again later with workflow.domain.status.read.",
    };
    Refusal::new(
        ErrorCode::AlreadySubmitted,
        format!(
            "Draft is already submitted for approval (status: {}): draft {draft_id} was submitted by {} at {} (execution_id: {})",
            status.lower(),
            by.actor_id,
            by.completed_at.unwrap_or(by.created_at).to_rfc3339(),
            by.execution_id
        ),
        hint,
    )
}

fn in_progress(e: &ExecutionRecord) -> Refusal {
    Refusal::new(
        ErrorCode::ExecutionInProgress,
        format!("Execution already in progress for draft {} by {} (execution_id: {}, started {})", e.draft_id, e.tool_id, e.execution_id, e.created_at),
        "Wait and read the result with audit.domain.run.read; if it stays STARTED, an operator clears it with `lynx executions clear-stuck`.",
    )
}

/// Checks 2–7 against the draft's current state; returns the draft that passed, with its approvals for
/// the tool's check 9.
pub(crate) async fn check(services: &Services, caller: &Principal, tool: &ToolSpec, draft_id: DraftId) -> Result<DraftForTool, Refusal> {
    let tenant = &caller.tenant_id;
    // 2. The draft exists in the caller's tenant (another tenant's draft looks exactly like a missing one).
    // The same read counts the draft's executions by this tool that count, for 5 and 6, and its
    // approvals, for check 9.
    let read = services
        .store
        .draft_for_tool(tenant, draft_id, tool.id)
        .await
        ?
        .ok_or_else(|| draft_not_found(draft_id, tenant))?;
    let (draft, claims) = (&read.draft, read.claims);
    // 3. The draft type matches the tool.
    if let Some(needed) = tool.draft_type.filter(|t| *t != draft.draft_type) {
        return Err(Refusal::new(
            ErrorCode::WrongDraftType,
            format!("Draft {draft_id} is a {} draft; {} acts on {needed} drafts only", draft.draft_type, tool.id),
            "Use the cell tool for this draft's type (workflow → workflow.cell.draft.publish, vpm_payment → vpm.cell.payment.execute).",
        ));
    }
    // 4. Not cancelled.
    if draft.status == DraftStatus::Cancelled {
        return Err(Refusal::new(
            ErrorCode::DraftCancelled,
            format!(
                "Draft {draft_id} was cancelled (status: cancelled) by {} at {}",
                draft.cancelled_by.as_deref().unwrap_or("unknown"),
                draft.cancelled_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
            "A cancelled draft cannot be used; create a new draft.",
        ));
    }
    // With no execution of this tool that counts, 5 and 6 can refuse only a draft that is done, and 7
    // every status but the one the tool needs: a call about to pass them needs no further read. (A claim
    // that wins after this read meets the claim's unique index, as it always did.)
    let needed = if tool.draft_type.is_none() { DraftStatus::Draft } else { DraftStatus::Approved };
    if claims == 0 && draft.status == needed {
        return Ok(read);
    }
    // 5 and 6. Exactly once: no success for this tool, draft not already published or executed, no claim in flight.
    let live = services.store.live_executions(tenant, draft_id).await?;
    let same_tool = live.iter().find(|e| e.status == RunStatus::Succeeded && e.tool_id == tool.id);
    // A submit of a draft that is not finished: it is already with the approvers (or decided).
    if let Some(submit) = same_tool.filter(|_| tool.draft_type.is_none() && !draft.status.is_done()) {
        return Err(already_submitted(draft_id, submit, draft.status));
    }
    if same_tool.is_some() || draft.status.is_done() {
        // Name this tool's success, else the latest success (the publish or payment that finished the draft).
        let by = same_tool.or_else(|| live.iter().rev().find(|e| e.status == RunStatus::Succeeded));
        return Err(already_executed(draft_id, by, draft.status));
    }
    if let Some(e) = live.iter().find(|e| e.status == RunStatus::Started && e.tool_id == tool.id) {
        return Err(in_progress(e));
    }
    // 7. The status the tool needs: DRAFT to submit, APPROVED to publish or execute.
    Err(match needed {
        DraftStatus::Approved => Refusal::new(
            ErrorCode::DraftNotApproved,
            format!(
                "Draft is not approved (status: {}): draft {draft_id} must be APPROVED before {}{}",
                draft.status.lower(),
                tool.id,
                missing_approvals(services, &draft).await
            ),
            match draft.status {
                DraftStatus::Draft => "Submit the draft with docs.cell.draft.submit_for_approval, then have an approver approve it.",
                DraftStatus::Submitted => "Wait for an approver to approve it (dashboard, `lynx drafts approve` or POST /api/drafts/{id}/approve).",
                _ => "A rejected draft cannot be executed; create a new draft.",
            },
        ),
        _ => Refusal::new(
            ErrorCode::InvalidTransition,
            format!("Draft cannot be submitted (status: {}): only a DRAFT can be submitted for approval (draft_id: {draft_id})", draft.status.lower()),
            "Nothing to do if it is already submitted or approved; a rejected draft needs a new draft.",
        ),
    })
}

/// What a submitted draft still lacks, for a "not yet" refusal: `; it has 1 of 2 approvals, due by …`.
/// Best effort: a Kernel or store that cannot answer leaves it out.
async fn missing_approvals(services: &Services, draft: &DraftRecord) -> String {
    if draft.status != DraftStatus::Submitted {
        return String::new();
    }
    let Ok(policies) = services.kernel.policies(&draft.tenant_id).await else { return String::new() };
    let Some(rule) = crate::approvals::applicable_rule(&policies, draft.draft_type, draft.amount()) else { return String::new() };
    let Ok(decisions) = services.store.approvals(&draft.tenant_id, draft.draft_id).await else { return String::new() };
    let recorded = decisions.iter().filter(|d| d.decision == lynx_model::records::Decision::Approved).count();
    let due = draft.decision_due_at.map(|d| format!(", due by {}", d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))).unwrap_or_default();
    format!("; it has {recorded} of {} approvals{due}", rule.approval_count)
}

/// A concurrent claim won: the draft is done (or submitted), or being done.
pub(crate) fn taken(live: &ExecutionRecord, draft_id: DraftId, tool: &ToolSpec) -> Refusal {
    match live.status {
        RunStatus::Succeeded if tool.draft_type.is_none() => already_submitted(draft_id, live, DraftStatus::Submitted),
        RunStatus::Succeeded => already_executed(draft_id, Some(live), DraftStatus::Executed),
        _ => in_progress(live),
    }
}

fn conflict(request_id: &str, tool: &str) -> Refusal {
    Refusal::new(
        ErrorCode::IdempotencyConflict,
        format!("request_id {request_id:?} was already used for a different request (another tool or other input than this {tool} call)"),
        "Use a new request_id for a new request; repeat a request only with exactly the same input.",
    )
}

/// A cluster call that repeats a `request_id`: the original answer, or a conflict.
pub(crate) fn replay_draft(existing: &DraftRecord, tool: &str, fingerprint: &str) -> Result<Value, Refusal> {
    let request_id = existing.request_id.as_deref().unwrap_or_default();
    match (&existing.request_fingerprint, &existing.response_payload) {
        (Some(f), Some(response)) if f == fingerprint => Ok(response.clone()),
        _ => Err(conflict(request_id, tool)),
    }
}

/// A cell call that repeats a `request_id`: the stored answer, or why there is none.
pub(crate) fn replay_execution(seen: &ExecutionRecord, fingerprint: &str) -> Result<Value, Refusal> {
    let request_id = seen.request_id.as_deref().unwrap_or_default();
    if seen.request_fingerprint.as_deref() != Some(fingerprint) {
        return Err(conflict(request_id, &seen.tool_id));
    }
    match seen.status {
        RunStatus::Succeeded => seen.result_payload.clone().ok_or_else(|| Refusal::internal("replaying a stored result")),
        RunStatus::Started => Err(in_progress(seen)),
        RunStatus::Failed | RunStatus::Denied => Err(Refusal::new(
            ErrorCode::ExecutionFailed,
            format!(
                "The earlier call with request_id {request_id:?} failed and applied nothing (execution_id: {}): {}",
                seen.execution_id,
                seen.error_message.as_deref().unwrap_or("no reason recorded")
            ),
            "Retry with a new request_id (or none).",
        )),
    }
}
