//! What the cluster tools share: the common part of their answer, Markdown that cannot carry markup
//! from user text, and the Kernel's approval facts for a new draft.

use lynx_governance::DraftCtx;
use lynx_model::{
    Refusal, Risk, TenantId,
    draft::{DraftStatus, DraftType},
    kernel::Policies,
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;

/// Every cluster tool's answer starts with these fields.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DraftSummary {
    pub draft_id: lynx_model::DraftId,
    pub status: DraftStatus,
    pub risk_level: Risk,
    /// Roles that may approve this draft under the tenant's policy.
    pub recommended_approvers: Vec<String>,
    pub required_approvals: u32,
    /// A Markdown preview; user text in it is escaped, so it carries no markup or HTML.
    pub preview_markdown: String,
    pub next_actions: Vec<String>,
    pub tenant_id: TenantId,
}

/// Escapes text for Markdown: HTML-significant characters become entities and Markdown punctuation is
/// backslash-escaped, so user text renders as the literal text it is.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.' | '!' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Who approves a draft of this type and amount, by the Kernel's current policy.
pub struct ApprovalFacts {
    pub rule_id: Option<String>,
    pub roles: Vec<String>,
    pub required: u32,
}

pub fn approval_facts(policies: &Policies, draft_type: DraftType, amount: Option<Decimal>) -> ApprovalFacts {
    match lynx_governance::approvals::applicable_rule(policies, draft_type, amount) {
        Some(rule) => ApprovalFacts { rule_id: Some(rule.rule_id.clone()), roles: rule.required_role.clone(), required: rule.approval_count },
        None => ApprovalFacts { rule_id: None, roles: Vec::new(), required: 1 },
    }
}

/// The steps after a draft is created, naming the tools and surfaces to use.
pub fn next_actions(ctx: &DraftCtx, facts: &ApprovalFacts, execute_with: Option<&str>) -> Vec<String> {
    let id = ctx.draft_id();
    let mut steps = vec![format!("Submit the draft for approval: docs.cell.draft.submit_for_approval with draft_id {id}.")];
    if facts.roles.is_empty() {
        steps.push("No approval rule covers this draft type yet: ask a tenant administrator to add one in the Kernel.".into());
    } else {
        steps.push(format!(
            "A human approver ({}; not the creator) approves it: dashboard /drafts/{id}, `lynx drafts approve {id} --user <approver's user id>` or POST /api/drafts/{id}/approve ({} approval(s) needed).",
            facts.roles.join(", "),
            facts.required
        ));
    }
    steps.push(format!("Wait for the decision with workflow.domain.status.read {{\"draft_id\": \"{id}\"}}: it says how many approvals it has and when it can be executed."));
    if let Some(tool) = execute_with {
        steps.push(format!("Once APPROVED, execute it exactly once with {tool} (draft_id {id})."));
    }
    steps
}

pub fn summary(ctx: &DraftCtx, risk: Risk, facts: &ApprovalFacts, preview: String, next: Vec<String>) -> DraftSummary {
    DraftSummary {
        draft_id: ctx.draft_id(),
        status: DraftStatus::Draft,
        risk_level: risk,
        recommended_approvers: facts.roles.clone(),
        required_approvals: facts.required,
        preview_markdown: preview,
        next_actions: next,
        tenant_id: ctx.tenant_id().clone(),
    }
}

/// A list argument's length rule.
pub fn at_most<T>(field: &str, items: &Option<Vec<T>>, max: usize) -> Result<(), Refusal> {
    match items {
        Some(v) if v.len() > max => Err(Refusal::invalid_input(field, format!("must list at most {max} items (got {})", v.len()))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_escaping_leaves_no_markup() {
        let e = super::md("<script>alert('x')</script> **bold** [l](u) <img src=x onerror=alert(1)>");
        assert!(!e.contains('<') && !e.contains('>'), "{e}");
        assert!(e.contains("&lt;script&gt;") && e.contains("\\*\\*bold\\*\\*") && e.contains("\\[l\\]\\(u\\)"), "{e}");
        assert_eq!(super::md("a\nb"), "a b");
    }
}
