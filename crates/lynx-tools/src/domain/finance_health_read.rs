//! `finance.domain.health.read` — the tenant's financial health: a 0–100 score, its status, risks and
//! recommendations, with the figures used. Sources: the Kernel's finance summary for the period and
//! Lynx's payments pending settlement. Risk: low.

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Refusal, Risk, TenantId};
use rust_decimal::{Decimal, RoundingStrategy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    CurrentMonth,
    LastMonth,
    Ytd,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::CurrentMonth => "current_month",
            Period::LastMonth => "last_month",
            Period::Ytd => "ytd",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The period to assess (default `current_month`).
    #[serde(default)]
    pub period: Period,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FinanceRisk {
    pub code: String,
    pub severity: String,
    pub description: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Figures {
    #[schemars(with = "String")]
    pub revenue: Decimal,
    #[schemars(with = "String")]
    pub expenses: Decimal,
    #[schemars(with = "String")]
    pub net_cash_flow: Decimal,
    #[schemars(with = "String")]
    pub outstanding: Decimal,
    pub currency: String,
    pub payments_pending_settlement: usize,
    #[schemars(with = "String")]
    pub amount_pending_settlement: Decimal,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub period: Period,
    /// clamp(100 × (revenue − expenses) / revenue, 0, 100).
    pub health_score: u8,
    /// `good` above 80, `needs_attention` above 50, else `critical`.
    pub status: String,
    pub risks: Vec<FinanceRisk>,
    pub recommendations: Vec<String>,
    pub figures: Figures,
}

pub struct FinanceHealthRead;

/// The score rule of TOOLS.md, in exact decimal.
pub fn health_score(revenue: Decimal, expenses: Decimal) -> u8 {
    if revenue <= Decimal::ZERO {
        return 0;
    }
    let raw = Decimal::ONE_HUNDRED * (revenue - expenses) / revenue;
    let clamped = raw.clamp(Decimal::ZERO, Decimal::ONE_HUNDRED);
    clamped.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero).try_into().unwrap_or(0)
}

pub fn status_for(score: u8) -> &'static str {
    match score {
        81.. => "good",
        51..=80 => "needs_attention",
        _ => "critical",
    }
}

impl Tool for FinanceHealthRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "finance.domain.health.read",
        title: "Financial health",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Scores the tenant's financial health (0-100) for a period from the Kernel's revenue, expenses and outstanding figures and Lynx's payments pending settlement, with risks and recommendations.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let summary = ctx.kernel().finance_summary(input.period.as_str()).await?;
        let pending = ctx.store().payments_in_status(lynx_model::vocab::PaymentStatus::PendingSettlement, None).await?;
        let pending_amount: Decimal = pending.iter().map(|p| p.amount).sum();
        let net = summary.revenue - summary.expenses;
        let score = health_score(summary.revenue, summary.expenses);

        let mut risks = Vec::new();
        let mut recommendations = Vec::new();
        if net < Decimal::ZERO {
            risks.push(FinanceRisk {
                code: "negative_cash_flow".into(),
                severity: "high".into(),
                description: format!("Expenses exceed revenue by {} {}", -net, summary.currency),
            });
            recommendations.push("Review discretionary expenses and defer non-critical payments until cash flow is positive.".into());
        }
        if summary.outstanding > Decimal::ZERO {
            let share = if summary.revenue > Decimal::ZERO { summary.outstanding / summary.revenue } else { Decimal::ONE };
            let severity = if share > Decimal::new(10, 2) { "high" } else { "medium" };
            risks.push(FinanceRisk {
                code: "outstanding_payments".into(),
                severity: severity.into(),
                description: format!("{} {} outstanding ({}% of revenue)", summary.outstanding, summary.currency, (share * Decimal::ONE_HUNDRED).round_dp(1)),
            });
            recommendations.push("Follow up on outstanding receivables, oldest first.".into());
        }
        if !pending.is_empty() {
            risks.push(FinanceRisk {
                code: "payments_pending_settlement".into(),
                severity: "low".into(),
                description: format!("{} executed payment(s) totalling {} await settlement", pending.len(), pending_amount),
            });
            recommendations.push("Settle or review queued settlement intents (`lynx settlements list`).".into());
        }
        if recommendations.is_empty() {
            recommendations.push("No action needed; keep monitoring monthly.".into());
        }
        Ok(Output {
            tenant_id: ctx.tenant_id().clone(),
            period: input.period,
            health_score: score,
            status: status_for(score).into(),
            risks,
            recommendations,
            figures: Figures {
                revenue: summary.revenue,
                expenses: summary.expenses,
                net_cash_flow: net,
                outstanding: summary.outstanding,
                currency: summary.currency,
                payments_pending_settlement: pending.len(),
                amount_pending_settlement: pending_amount,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_and_status_follow_the_rule() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(health_score(d("100"), d("10")), 90);
        assert_eq!(health_score(d("100"), d("150")), 0);
        assert_eq!(health_score(d("0"), d("10")), 0);
        assert_eq!(health_score(d("482500.00"), d("391200.00")), 19);
        assert_eq!(status_for(81), "good");
        assert_eq!(status_for(80), "needs_attention");
        assert_eq!(status_for(51), "needs_attention");
        assert_eq!(status_for(50), "critical");
    }
}
