//! `vpm.domain.payment.status.read` — executed payments and their settlement state, with counts of
//! payment drafts awaiting approval and failed payments, and the amount pending. Source: Lynx's
//! payments and drafts. Risk: low.

use chrono::{DateTime, Utc};
use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{
    DraftId, PaymentId, Refusal, Risk, TenantId,
    draft::{DraftStatus, DraftType},
    money::Currency,
    params::{Limit, Since},
    store::PaymentFilter,
    vocab::PaymentStatus,
};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[schemars(length(min = 1, max = 100))]
    pub vendor_id: Option<String>,
    pub status: Option<PaymentStatus>,
    /// Only payments created at or after this time.
    pub since: Option<Since>,
    /// How many payments, 1–100 (default 10).
    #[serde(default)]
    pub limit: Limit<100, 10>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Payment {
    pub payment_id: PaymentId,
    pub draft_id: DraftId,
    pub vendor_id: String,
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub currency: Currency,
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub payments: Vec<Payment>,
    /// Payment drafts submitted and waiting for approval.
    pub pending_approvals_count: i64,
    pub failed_payments_count: usize,
    /// Sum of all payments pending settlement.
    #[schemars(with = "String")]
    pub total_pending_amount: Decimal,
}

pub struct VpmPaymentStatusRead;

impl Tool for VpmPaymentStatusRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "vpm.domain.payment.status.read",
        title: "Payment status",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Lists executed vendor payments and their settlement status (filter by vendor, status, time), with the number of payment drafts awaiting approval, failed payments and the total pending settlement.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let store = ctx.store();
        let filter = PaymentFilter {
            vendor_id: input.vendor_id,
            status: input.status,
            since: input.since.map(|s| s.0),
            limit: input.limit.get(),
        };
        let payments = store
            .payments(&filter)
            .await?
            .into_iter()
            .map(|p| Payment {
                payment_id: p.payment_id,
                draft_id: p.draft_id,
                vendor_id: p.vendor_id,
                amount: p.amount,
                currency: p.currency,
                settled_at: (p.status == PaymentStatus::Settled).then_some(p.updated_at),
                status: p.status,
                created_at: p.created_at,
            })
            .collect();
        let pending = store.payments_in_status(PaymentStatus::PendingSettlement, None).await?;
        let failed = store.payments_in_status(PaymentStatus::Failed, None).await?;
        Ok(Output {
            tenant_id: ctx.tenant_id().clone(),
            payments,
            pending_approvals_count: store.count_drafts(DraftStatus::Submitted, Some(DraftType::VpmPayment)).await?,
            failed_payments_count: failed.len(),
            total_pending_amount: pending.iter().map(|p| p.amount).sum(),
        })
    }
}
