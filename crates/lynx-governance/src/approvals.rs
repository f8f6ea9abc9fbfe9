//! Human decisions on drafts — approve, reject, cancel, and the operator's emergency reset — with the
//! maker-checker rule, the Kernel's approver roles and N-approval policies. Every surface (HTTP API,
//! CLI, dashboard) comes here; every decision records who, when and why and is audited.

use lynx_model::{
    DraftId,
    ErrorCode, Principal, Refusal, TenantId,
    draft::{DraftStatus, DraftType, Transition},
    kernel::{ApprovalRule, Policies},
    records::{Decision, DecisionOutcome, DraftRecord, TransitionOutcome},
    vocab::RunStatus,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use crate::{audit, execution::draft_not_found, services::Services};

/// The strictest Kernel approval rule that applies to a draft: rules for its type, those with a
/// threshold only when the amount exceeds it; the most approvals wins, a thresholded rule on a tie.
pub fn applicable_rule(policies: &Policies, draft_type: DraftType, amount: Option<Decimal>) -> Option<&ApprovalRule> {
    policies
        .approval_rules
        .iter()
        .filter(|r| r.workflow_type == draft_type.as_str())
        .filter(|r| match (r.threshold_amount, amount) {
            (None, _) => true,
            (Some(t), Some(a)) => a > t,
            (Some(_), None) => false,
        })
        .max_by_key(|r| (r.approval_count, r.threshold_amount.is_some()))
}

/// When an approval stops being good for execution: its time plus the rule's validity.
pub fn approval_expires_at(draft: &DraftRecord, rule: &ApprovalRule) -> Option<DateTime<Utc>> {
    draft.approved_at.map(|at| at + rule.approval_validity())
}

/// An approval older than the rule's validity may not be executed on: the decision was about a world
/// that may have moved on.
pub fn approval_in_force(draft: &DraftRecord, rule: &ApprovalRule, now: DateTime<Utc>) -> Result<(), Refusal> {
    match approval_expires_at(draft, rule) {
        Some(until) if now > until => Err(Refusal::new(
            ErrorCode::ApprovalExpired,
            format!(
                "Approval expired: draft {} was approved at {} and approvals are good for {} under policy {} (until {})",
                draft.draft_id,
                draft.approved_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
                lynx_model::kernel::hours_text(rule.approval_validity_hours),
                rule.rule_id,
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            "Nothing was executed. Create and submit a new draft for a fresh approval.",
        )),
        _ => Ok(()),
    }
}

fn no_rule(draft_type: DraftType) -> Refusal {
    Refusal::new(
        ErrorCode::PolicyViolation,
        format!("No approval rule in the Kernel covers {draft_type} drafts, so nobody may approve them"),
        "Ask a tenant administrator to add an approval rule for this draft type in the Kernel.",
    )
}

async fn load(services: &Services, tenant: &TenantId, draft_id: DraftId) -> Result<DraftRecord, Refusal> {
    services.store.draft(Some(tenant), draft_id).await?.ok_or_else(|| draft_not_found(draft_id, tenant))
}

/// May `who` decide on `draft`? Maker-checker first, then the rule's roles and scopes.
fn check_approver(who: &Principal, draft: &DraftRecord, rule: &ApprovalRule) -> Result<(), Refusal> {
    if who.user_id.as_str() == draft.created_by {
        return Err(Refusal::new(
            ErrorCode::SelfApproval,
            format!("Maker-checker: {} created draft {} and cannot approve or reject it", who.user_id, draft.draft_id),
            "Another approver must decide; Lynx never lets a draft's creator approve it.",
        ));
    }
    if !rule.required_role.contains(&who.role) {
        return Err(Refusal::new(
            ErrorCode::PermissionDenied,
            format!(
                "Permission denied: role {} may not decide on {} drafts (approver roles: {})",
                who.role,
                draft.draft_type,
                rule.required_role.join(", ")
            ),
            "Ask a user with one of the approver roles to decide.",
        ));
    }
    let missing: Vec<&str> = rule.required_scope.iter().filter(|s| !who.scopes.contains(s)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(Refusal::new(
            ErrorCode::PermissionDenied,
            format!("Permission denied: {} lacks scope {} required to approve {} drafts", who.user_id, missing.join(", "), draft.draft_type),
            "Ask a tenant administrator for the scope, or ask another approver.",
        ));
    }
    Ok(())
}

/// The result of a decision, for the surfaces to show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecisionResult {
    pub draft: DraftRecord,
    pub approvals: u32,
    pub required_approvals: u32,
}

/// Records an approval or a rejection by `who`.
pub async fn decide(
    services: &Services,
    who: &Principal,
    draft_id: DraftId,
    decision: Decision,
    note: Option<String>,
) -> Result<DecisionResult, Refusal> {
    let tenant = &who.tenant_id;
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if decision == Decision::Rejected && note.is_none() {
        return Err(Refusal::invalid_input("reason", "is required to reject a draft"));
    }
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(Refusal::invalid_input(if decision == Decision::Rejected { "reason" } else { "notes" }, "must be at most 2000 characters"));
    }
    let draft = load(services, tenant, draft_id).await?;
    let policies = services.kernel.policies(tenant).await?;
    let rule = applicable_rule(&policies, draft.draft_type, draft.amount()).ok_or_else(|| no_rule(draft.draft_type))?;
    check_approver(who, &draft, rule)?;
    let action = match decision {
        Decision::Approved => "lynx.drafts.approve",
        Decision::Rejected => "lynx.drafts.reject",
    };
    let now = services.clock.now();
    let outcome = services
        .store
        .decide(tenant, draft_id, who.user_id.as_str(), decision, note.as_deref(), rule.approval_count, now)
        .await
        ?;
    let (draft, approvals) = match outcome {
        DecisionOutcome::Recorded { draft, approvals } => (*draft, approvals),
        DecisionOutcome::NotFound => return Err(draft_not_found(draft_id, tenant)),
        DecisionOutcome::WrongStatus(status) => return Err(wrong_status(draft_id, status, Transition::Approve)),
        DecisionOutcome::AlreadyDecided => {
            return Err(Refusal::new(
                ErrorCode::InvalidTransition,
                format!("{} has already recorded a decision on draft {draft_id}", who.user_id),
                "Each approver decides once; a policy needing more approvals needs other approvers.",
            ));
        }
    };
    audit::human_action(
        services,
        tenant,
        who.user_id.as_str(),
        action,
        RunStatus::Succeeded,
        json!({"draft_id": draft_id, "decision": decision, "note": note}),
        json!({"draft_id": draft_id, "status": draft.status, "approvals": approvals, "required_approvals": rule.approval_count, "rule_id": rule.rule_id}),
        None,
    )
    .await?;
    Ok(DecisionResult { draft, approvals, required_approvals: rule.approval_count })
}

fn wrong_status(draft_id: DraftId, status: DraftStatus, t: Transition) -> Refusal {
    let (from, _) = t.rule();
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    Refusal::new(
        ErrorCode::InvalidTransition,
        format!("Draft {draft_id} cannot be {} (status: {}): it must be {}", t.verb(), status.lower(), from.join(" or ")),
        "Check the draft's current status (GET /api/drafts/{id} or `lynx drafts show`).",
    )
}

/// Cancels a `DRAFT` or `SUBMITTED` draft: its creator or an approver may.
pub async fn cancel(services: &Services, who: &Principal, draft_id: DraftId, reason: Option<String>) -> Result<DraftRecord, Refusal> {
    let tenant = &who.tenant_id;
    let draft = load(services, tenant, draft_id).await?;
    if draft.created_by != who.user_id.as_str() {
        let policies = services.kernel.policies(tenant).await?;
        let rule = applicable_rule(&policies, draft.draft_type, draft.amount()).ok_or_else(|| no_rule(draft.draft_type))?;
        if !rule.required_role.contains(&who.role) {
            return Err(Refusal::new(
                ErrorCode::PermissionDenied,
                format!("Permission denied: only the creator ({}) or an approver ({}) may cancel draft {draft_id}", draft.created_by, rule.required_role.join(", ")),
                "Ask the draft's creator or an approver to cancel it.",
            ));
        }
    }
    let now = services.clock.now();
    let outcome = services.store.transition_draft(tenant, draft_id, Transition::Cancel, who.user_id.as_str(), now).await?;
    let draft = match outcome {
        TransitionOutcome::Done(d) => *d,
        TransitionOutcome::NotFound => return Err(draft_not_found(draft_id, tenant)),
        TransitionOutcome::WrongStatus(s) => return Err(wrong_status(draft_id, s, Transition::Cancel)),
    };
    audit::human_action(
        services,
        tenant,
        who.user_id.as_str(),
        "lynx.drafts.cancel",
        RunStatus::Succeeded,
        json!({"draft_id": draft_id, "reason": reason}),
        json!({"draft_id": draft_id, "status": draft.status}),
        None,
    )
    .await?;
    Ok(draft)
}

/// The operator's emergency reset of any draft to `DRAFT` (the runbook's "Force Draft Status Reset").
pub async fn reset(services: &Services, operator: &str, tenant: &TenantId, draft_id: DraftId) -> Result<DraftRecord, Refusal> {
    let before = load(services, tenant, draft_id).await?;
    let now = services.clock.now();
    let outcome = services.store.transition_draft(tenant, draft_id, Transition::Reset, operator, now).await?;
    let draft = match outcome {
        TransitionOutcome::Done(d) => *d,
        TransitionOutcome::NotFound => return Err(draft_not_found(draft_id, tenant)),
        TransitionOutcome::WrongStatus(s) => return Err(wrong_status(draft_id, s, Transition::Reset)),
    };
    audit::human_action(
        services,
        tenant,
        operator,
        "lynx.drafts.reset",
        RunStatus::Succeeded,
        json!({"draft_id": draft_id, "forced": true}),
        json!({"draft_id": draft_id, "from_status": before.status, "status": draft.status}),
        None,
    )
    .await?;
    Ok(draft)
}

/// Expires the drafts whose decision deadline has passed — every instance sweeps, each draft expires
/// once — and audits each as `system`'s action.
pub async fn expire_due(services: &Services) -> Result<Vec<DraftRecord>, Refusal> {
    let expired = services.store.expire_drafts(services.clock.now()).await?;
    for d in &expired {
        audit::human_action(
            services,
            &d.tenant_id,
            "system",
            "lynx.drafts.expire",
            RunStatus::Succeeded,
            json!({"draft_id": d.draft_id, "decision_due_at": d.decision_due_at}),
            json!({"draft_id": d.draft_id, "status": d.status, "rejection_reason": d.rejection_reason}),
            None,
        )
        .await?;
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, t: &str, threshold: Option<&str>, count: u32) -> ApprovalRule {
        ApprovalRule {
            rule_id: id.into(),
            workflow_type: t.into(),
            required_role: vec!["approver".into()],
            required_scope: vec![],
            threshold_amount: threshold.map(|t| t.parse().unwrap()),
            approval_count: count,
            decision_deadline_hours: 72.0,
            approval_validity_hours: 24.0,
        }
    }

    #[test]
    fn the_strictest_applicable_rule_wins() {
        let policies = Policies {
            approval_rules: vec![rule("std", "vpm_payment", None, 1), rule("big", "vpm_payment", Some("1000.00"), 2), rule("docs", "docs", None, 1)],
            ..Default::default()
        };
        let d = |s: &str| Some(s.parse::<Decimal>().unwrap());
        assert_eq!(applicable_rule(&policies, DraftType::VpmPayment, d("999.99")).unwrap().rule_id, "std");
        assert_eq!(applicable_rule(&policies, DraftType::VpmPayment, d("1000.00")).unwrap().rule_id, "std");
        assert_eq!(applicable_rule(&policies, DraftType::VpmPayment, d("1000.01")).unwrap().rule_id, "big");
        assert_eq!(applicable_rule(&policies, DraftType::Docs, None).unwrap().rule_id, "docs");
        assert!(applicable_rule(&policies, DraftType::Workflow, None).is_none());
    }
}
