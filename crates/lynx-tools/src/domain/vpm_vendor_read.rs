//! `vpm.domain.vendor.read` — one vendor (status, risk flags, terms, bank details, what Lynx has paid
//! and owes it) or a count of vendors by status. Sources: the Kernel's vendors and Lynx's payments.
//! Risk: low.

use std::collections::BTreeMap;

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Refusal, Risk, TenantId, kernel::VendorStatus, vocab::PaymentStatus};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// A vendor id; without it, a summary of all vendors by status.
    #[schemars(length(min = 1, max = 100))]
    pub vendor_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VendorDetail {
    pub vendor_id: String,
    pub vendor_name: String,
    pub status: VendorStatus,
    pub risk_flags: Vec<String>,
    pub payment_terms: String,
    pub bank_details_present: bool,
    /// Sum of this vendor's settled payments.
    #[schemars(with = "String")]
    pub total_paid: Decimal,
    /// Sum of this vendor's payments pending settlement.
    #[schemars(with = "String")]
    pub outstanding: Decimal,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<VendorDetail>,
    /// Vendor status → how many vendors have it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendors_summary: Option<BTreeMap<String, usize>>,
}

pub struct VpmVendorRead;

impl Tool for VpmVendorRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "vpm.domain.vendor.read",
        title: "Vendor",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "With a vendor_id: the vendor's status, risk flags, payment terms and bank details from the Kernel plus what Lynx has paid and owes it. Without: the number of vendors in each status.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let tenant_id = ctx.tenant_id().clone();
        let Some(vendor_id) = input.vendor_id else {
            let mut summary = BTreeMap::new();
            for v in ctx.kernel().vendors().await? {
                *summary.entry(v.status.as_str().to_string()).or_insert(0) += 1;
            }
            return Ok(Output { tenant_id, vendor: None, vendors_summary: Some(summary) });
        };
        let v = ctx.kernel().vendor(&vendor_id).await?;
        let store = ctx.store();
        let sum = |ps: Vec<lynx_model::store::PaymentRecord>| ps.iter().map(|p| p.amount).sum::<Decimal>();
        let total_paid = sum(store.payments_in_status(PaymentStatus::Settled, Some(&vendor_id)).await?);
        let outstanding = sum(store.payments_in_status(PaymentStatus::PendingSettlement, Some(&vendor_id)).await?);
        Ok(Output {
            tenant_id,
            vendor: Some(VendorDetail {
                vendor_id: v.vendor_id,
                vendor_name: v.vendor_name,
                status: v.status,
                risk_flags: v.risk_flags,
                payment_terms: v.payment_terms,
                bank_details_present: v.bank_details_present,
                total_paid,
                outstanding,
            }),
            vendors_summary: None,
        })
    }
}
