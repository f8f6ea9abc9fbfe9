//! `vpm.cell.payment.execute` — executes an approved payment draft, once: re-checks the vendor and the
//! approval policy against the Kernel's current data, then records a payment `pending_settlement` and
//! a settlement intent `queued` with provider `none`. No money moves. Risk: high (in `prod` the call
//! also needs `explicit_approval: true`).

use chrono::{DateTime, Utc};
use lynx_governance::{ExecCtx, Tool, ToolSpec};
use lynx_model::{
    ErrorCode, PaymentId, Refusal, Risk, TenantId,
    draft::DraftType,
    money::Currency,
    payload::DraftPayload,
    vocab::{PaymentStatus, SettlementStatus},
    kernel::VendorStatus,
    params::{DraftIdParam, RequestId},
    records::{Effect, PaymentDetails},
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub draft_id: DraftIdParam,
    /// In prod mode, required: the human explicitly confirmed this execution.
    pub explicit_approval: Option<bool>,
    pub request_id: Option<RequestId>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SettlementIntent {
    pub payment_id: PaymentId,
    pub status: SettlementStatus,
    pub provider: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub execution_id: lynx_model::ExecutionId,
    pub draft_id: lynx_model::DraftId,
    pub payment_id: PaymentId,
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub currency: Currency,
    /// Always `pending_settlement`: no bank transfer has happened.
    pub status: PaymentStatus,
    pub settlement_intent: SettlementIntent,
    pub tenant_id: TenantId,
}

pub struct VpmPaymentExecute;

impl Tool for VpmPaymentExecute {
    type Input = Input;
    type Output = Output;
    type Context = ExecCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "vpm.cell.payment.execute",
        title: "Execute an approved payment",
        risk: Risk::High,
        draft_type: Some(DraftType::VpmPayment),
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Executes an APPROVED vendor payment draft exactly once: re-checks the vendor and the approval policy in the Kernel, then records a payment pending settlement and a queued settlement intent (provider none). No money moves. In prod mode the call needs explicit_approval: true.",
    };

    async fn run(&self, ctx: &ExecCtx, input: Input) -> Result<Output, Refusal> {
        let draft = ctx.draft();
        let DraftPayload::Payment(payment) = &draft.payload else {
            return Err(Refusal::internal("reading a payment draft's payload"));
        };
        let vendor = ctx.kernel().vendor(&payment.vendor_id).await?;
        if vendor.status != VendorStatus::Active {
            return Err(Refusal::new(
                ErrorCode::VendorInactive,
                format!("Vendor {} ({}) is now {} in the Kernel: the payment is refused", vendor.vendor_id, vendor.vendor_name, vendor.status.as_str()),
                "Nothing was executed. Create a new draft for an active vendor, or have the vendor reactivated.",
            ));
        }
        super::approvals_still_satisfy_policy(ctx).await?;
        let (amount, currency) = (payment.amount.value(), payment.currency.clone());
        let payment_id = PaymentId::new();
        ctx.stage(Effect::Pay(PaymentDetails {
            payment_id,
            vendor_id: payment.vendor_id.clone(),
            amount,
            currency: currency.clone(),
            due_date: payment.due_date.clone(),
        }))?;
        Ok(Output {
            execution_id: ctx.execution_id(),
            draft_id: input.draft_id.0,
            payment_id,
            amount,
            currency,
            status: PaymentStatus::PendingSettlement,
            settlement_intent: SettlementIntent { payment_id, status: SettlementStatus::Queued, provider: "none".into(), created_at: ctx.now() },
            tenant_id: ctx.tenant_id().clone(),
        })
    }
}
