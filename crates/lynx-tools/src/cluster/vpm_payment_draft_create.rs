//! `vpm.cluster.payment.draft.create` — drafts a vendor payment: checks the vendor in the Kernel
//! (an inactive vendor is refused), classifies the risk against the tenant's approval threshold and the
//! vendor's risk flags, and keeps a vendor snapshot. Sources: Kernel vendor, tenant settings, policy.
//! Risk: medium (the draft's own risk is computed).

use lynx_governance::{DraftCtx, NewDraft, Tool, ToolSpec};
use lynx_model::{
    payload::{DraftPayload, PaymentPayload},
    ErrorCode, Refusal, Risk,
    draft::DraftType,
    kernel::{Vendor, VendorStatus},
    money::{Amount, Currency},
    params::{IsoDate, RequestId, Text},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::drafting::{self, DraftSummary, md};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The Kernel vendor to pay.
    pub vendor_id: Text<1, 100>,
    /// Greater than 0, at most 2 decimals; a string ("1250.00") keeps it exact.
    pub amount: Amount,
    /// ISO 4217 code (default USD).
    #[serde(default)]
    pub currency: Currency,
    /// ISO 8601 date or date-time.
    pub due_date: IsoDate,
    /// Invoice references (at most 100).
    pub invoice_refs: Option<Vec<Text<1, 200>>>,
    pub request_id: Option<RequestId>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VendorSnapshot {
    pub vendor_id: String,
    pub vendor_name: String,
    pub status: VendorStatus,
    pub risk_flags: Vec<String>,
    pub payment_terms: String,
    pub bank_details_present: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionReadiness {
    pub is_vendor_active: bool,
    pub bank_details_present: bool,
    pub amount_within_threshold: bool,
    pub requires_manual_review: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    #[serde(flatten)]
    pub draft: DraftSummary,
    pub vendor_snapshot: VendorSnapshot,
    pub execution_readiness: ExecutionReadiness,
}

pub struct VpmPaymentDraftCreate;

fn snapshot(v: &Vendor) -> VendorSnapshot {
    VendorSnapshot {
        vendor_id: v.vendor_id.clone(),
        vendor_name: v.vendor_name.clone(),
        status: v.status,
        risk_flags: v.risk_flags.clone(),
        payment_terms: v.payment_terms.clone(),
        bank_details_present: v.bank_details_present,
    }
}

impl Tool for VpmPaymentDraftCreate {
    type Input = Input;
    type Output = Output;
    type Context = DraftCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "vpm.cluster.payment.draft.create",
        title: "Draft a vendor payment",
        risk: Risk::Medium,
        draft_type: Some(DraftType::VpmPayment),
        serves_during_kernel_outage: false,
        role_gate: Some("payment_create"),
        description: "Creates a vendor payment draft for human approval: checks the vendor in the Kernel, computes the risk (above the tenant's approval threshold or a risk-flagged vendor is high), and returns a vendor snapshot, execution readiness and an escaped Markdown preview. Moves no money.",
    };

    async fn run(&self, ctx: &DraftCtx, input: Input) -> Result<Output, Refusal> {
        drafting::at_most("invoice_refs", &input.invoice_refs, 100)?;
        input.amount.fits(&input.currency).map_err(|e| Refusal::invalid_input("amount", e))?;
        let kernel = ctx.kernel();
        let vendor = kernel.vendor(input.vendor_id.as_str()).await.map_err(|r| {
            if r.code == ErrorCode::NotFound { Refusal::invalid_input("vendor_id", r.message) } else { r }
        })?;
        if vendor.status != VendorStatus::Active {
            return Err(Refusal::new(
                ErrorCode::VendorInactive,
                format!("Vendor {} ({}) is {}: payments to it are refused", vendor.vendor_id, vendor.vendor_name, vendor.status.as_str()),
                "Pay an active vendor, or ask procurement to reactivate this one in the Kernel.",
            ));
        }
        let tenant = kernel.tenant().await?;
        let policies = kernel.policies().await?;
        let amount = input.amount.value();
        let threshold = tenant.settings.approval_threshold;
        let within = amount <= threshold;
        let risk = if !within || !vendor.risk_flags.is_empty() { Risk::High } else { Risk::Medium };
        let facts = drafting::approval_facts(&policies, DraftType::VpmPayment, Some(amount));
        let refs: Vec<String> = input.invoice_refs.unwrap_or_default().iter().map(|r| r.as_str().to_string()).collect();

        let mut preview = format!(
            "### Payment draft: {} {} to {}\n\n| Field | Value |\n|---|---|\n| Vendor | {} ({}) |\n| Amount | {} {} |\n| Due date | {} |\n| Risk | {} |\n| Approvals needed | {} |\n",
            input.amount.display(),
            input.currency.as_str(),
            md(&vendor.vendor_name),
            md(&vendor.vendor_name),
            md(&vendor.vendor_id),
            input.amount.display(),
            input.currency.as_str(),
            md(input.due_date.as_str()),
            risk,
            facts.required,
        );
        if !refs.is_empty() {
            preview.push_str(&format!("| Invoices | {} |\n", refs.iter().map(|r| md(r)).collect::<Vec<_>>().join(", ")));
        }
        if !vendor.risk_flags.is_empty() {
            preview.push_str(&format!("\n**Vendor risk flags:** {}\n", vendor.risk_flags.iter().map(|f| md(f)).collect::<Vec<_>>().join(", ")));
        }
        if !within {
            preview.push_str(&format!("\n**Above the approval threshold** of {threshold} {}.\n", tenant.settings.currency));
        }
        preview.push_str("\nNo money moves: execution creates a payment pending settlement.\n");

        let readiness = ExecutionReadiness {
            is_vendor_active: true,
            bank_details_present: vendor.bank_details_present,
            amount_within_threshold: within,
            requires_manual_review: !vendor.risk_flags.is_empty() || !vendor.bank_details_present,
        };
        ctx.stage(NewDraft {
            payload: DraftPayload::Payment(PaymentPayload {
                vendor_id: vendor.vendor_id.clone(),
                amount: input.amount,
                currency: input.currency.clone(),
                due_date: input.due_date.clone(),
                invoice_refs: refs,
            }),
            risk_level: risk,
            source_context: json!({
                "vendor": snapshot(&vendor), "approval_threshold": threshold, "threshold_currency": tenant.settings.currency,
                "approval_rule": facts.rule_id, "required_approvals": facts.required, "checked_at": ctx.now(),
            }),
            recommended_approvers: facts.roles.clone(),
            preview_markdown: preview.clone(),
        })?;
        let next = drafting::next_actions(ctx, &facts, Some("vpm.cell.payment.execute"));
        Ok(Output { draft: drafting::summary(ctx, risk, &facts, preview, next), vendor_snapshot: snapshot(&vendor), execution_readiness: readiness })
    }
}
