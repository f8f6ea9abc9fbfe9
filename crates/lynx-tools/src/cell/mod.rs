//! The cell layer: three tools that act on a draft a human approved (or, for submit, on a draft), each
//! exactly once. The pipeline has already run the execution protocol's checks; each tool re-checks
//! what it needs against the Kernel's current state and stages one effect, which its `ExecCtx` applies
//! under the exactly-once claim, atomically with `SUCCEEDED`.

pub mod docs_draft_submit;
pub mod vpm_payment_execute;
pub mod workflow_draft_publish;

use lynx_governance::ExecCtx;
use lynx_model::{ErrorCode, Refusal};

/// Check 9's policy half: the approvals recorded must still satisfy the Kernel's current rule, and the
/// approval must still be within the rule's validity.
pub(crate) async fn approvals_still_satisfy_policy(ctx: &ExecCtx) -> Result<(), Refusal> {
    let draft = ctx.draft();
    let policies = ctx.kernel().policies().await?;
    let amount = draft.amount();
    let Some(rule) = lynx_governance::approvals::applicable_rule(&policies, draft.draft_type, amount) else {
        return Err(Refusal::new(
            ErrorCode::PolicyViolation,
            format!("No approval rule in the Kernel covers {} drafts any more", draft.draft_type),
            "Ask a tenant administrator to restore the approval rule; nothing was executed.",
        ));
    };
    let approved = ctx.approvals_by_others();
    if approved < rule.approval_count {
        return Err(Refusal::new(
            ErrorCode::PolicyViolation,
            format!(
                "Policy {} now requires {} distinct approval(s) for this draft; it has {approved}",
                rule.rule_id, rule.approval_count
            ),
            "Have further approvers approve the draft, then execute again.",
        ));
    }
    lynx_governance::approvals::approval_in_force(draft, rule, ctx.now())
}
