//! `docs.domain.registry.read` — the tenant's registered documents (PRDs, decisions, ADRs, laws…) with
//! versions, statuses and checksums. Source: the Kernel's document registry. Risk: low.

use lynx_governance::{ReadCtx, Tool, ToolSpec};
use lynx_model::{Refusal, Risk, TenantId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Only documents of this type (`PRD`, `SRS`, `ADR`, `DECISION`, `LAW`, …).
    #[schemars(length(min = 1, max = 100))]
    pub doc_type: Option<String>,
    /// Include checksums (default true).
    #[serde(default = "crate::yes")]
    pub include_checksums: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DocumentEntry {
    pub document_id: String,
    pub document_type: String,
    pub title: String,
    pub version: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub tenant_id: TenantId,
    pub documents: Vec<DocumentEntry>,
    pub total_count: usize,
}

pub struct DocsRegistryRead;

impl Tool for DocsRegistryRead {
    type Input = Input;
    type Output = Output;
    type Context = ReadCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "docs.domain.registry.read",
        title: "Document registry",
        risk: Risk::Low,
        draft_type: None,
        serves_during_kernel_outage: false,
        role_gate: None,
        description: "Lists the tenant's registered documents from the Kernel with type, title, version, status and checksum, optionally filtered by document type.",
    };

    async fn run(&self, ctx: &ReadCtx, input: Input) -> Result<Output, Refusal> {
        let documents: Vec<DocumentEntry> = ctx
            .kernel()
            .documents()
            .await?
            .into_iter()
            .filter(|d| input.doc_type.as_ref().is_none_or(|t| d.document_type.eq_ignore_ascii_case(t)))
            .map(|d| DocumentEntry {
                document_id: d.document_id,
                document_type: d.document_type,
                title: d.title,
                version: d.version,
                status: d.status,
                checksum: input.include_checksums.then_some(d.checksum),
            })
            .collect();
        Ok(Output { tenant_id: ctx.tenant_id().clone(), total_count: documents.len(), documents })
    }
}
