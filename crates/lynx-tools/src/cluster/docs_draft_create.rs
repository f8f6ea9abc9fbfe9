//! `docs.cluster.draft.create` — drafts a document (PRD, SRS, ADR, DECISION, LAW, …) and says how it
//! relates to the Kernel's document registry: a new document, or a revision of one with the same type
//! and title. Source: Kernel documents. Risk: medium (the draft's own risk is computed).

use lynx_governance::{DraftCtx, NewDraft, Tool, ToolSpec};
use lynx_model::{
    payload::{DocsPayload, DraftPayload},
    Refusal, Risk,
    draft::DraftType,
    params::{RequestId, Text},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::drafting::{self, DraftSummary, md};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The document type: PRD, SRS, ADR, DECISION, LAW, … (upper-case letters, digits and `_`).
    pub doc_type: Text<1, 30>,
    /// 1 to 500 characters.
    pub title: Text<1, 500>,
    pub content_outline: Option<Text<1, 20000>>,
    /// References the document draws on (at most 100).
    pub source_refs: Option<Vec<Text<1, 500>>>,
    pub request_id: Option<RequestId>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    #[serde(flatten)]
    pub draft: DraftSummary,
    /// How the draft relates to the registry.
    pub diff_summary: String,
}

pub struct DocsDraftCreate;

/// PRDs and laws carry the most weight.
pub fn risk(doc_type: &str) -> Risk {
    if matches!(doc_type, "PRD" | "LAW") { Risk::High } else { Risk::Medium }
}

impl Tool for DocsDraftCreate {
    type Input = Input;
    type Output = Output;
    type Context = DraftCtx;
    const SPEC: ToolSpec = ToolSpec {
        id: "docs.cluster.draft.create",
        title: "Draft a document",
        risk: Risk::Medium,
        draft_type: Some(DraftType::Docs),
        serves_during_kernel_outage: false,
        role_gate: Some("document_create"),
        description: "Creates a document draft (PRD, SRS, ADR, DECISION, LAW, …) for human approval, with a summary of how it relates to the Kernel's document registry and an escaped Markdown preview.",
    };

    async fn run(&self, ctx: &DraftCtx, input: Input) -> Result<Output, Refusal> {
        let doc_type = input.doc_type.as_str();
        if !doc_type.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            return Err(Refusal::invalid_input("doc_type", "must be upper-case letters, digits or '_' such as PRD, ADR or DECISION"));
        }
        drafting::at_most("source_refs", &input.source_refs, 100)?;
        let kernel = ctx.kernel();
        let documents = kernel.documents().await?;
        let policies = kernel.policies().await?;
        let title = input.title.as_str().trim();
        let same_type: Vec<_> = documents.iter().filter(|d| d.document_type == doc_type).collect();
        let diff_summary = match same_type.iter().find(|d| d.title.eq_ignore_ascii_case(title)) {
            Some(d) => format!("Revises {} \"{}\" (registry version {}, status {})", d.document_id, d.title, d.version, d.status),
            None => format!("New {doc_type} document; the registry holds {} {doc_type} document(s)", same_type.len()),
        };
        let risk = risk(doc_type);
        let facts = drafting::approval_facts(&policies, DraftType::Docs, None);
        let refs: Vec<String> = input.source_refs.unwrap_or_default().iter().map(|r| r.as_str().to_string()).collect();
        let mut preview = format!("### {} draft: {}\n\n{}\n\nRisk: {}\n", md(doc_type), md(title), md(&diff_summary), risk);
        if let Some(outline) = &input.content_outline {
            preview.push_str("\n#### Outline\n\n");
            for line in outline.as_str().lines().filter(|l| !l.trim().is_empty()) {
                preview.push_str(&format!("- {}\n", md(line.trim())));
            }
        }
        if !refs.is_empty() {
            preview.push_str(&format!("\nSources: {}\n", refs.iter().map(|r| md(r)).collect::<Vec<_>>().join(", ")));
        }
        ctx.stage(NewDraft {
            payload: DraftPayload::Docs(DocsPayload {
                doc_type: doc_type.to_string(),
                title: input.title.as_str().to_string(),
                content_outline: input.content_outline.as_ref().map(|o| o.as_str().to_string()),
                source_refs: refs.clone(),
            }),
            risk_level: risk,
            source_context: json!({"registry_documents_of_type": same_type.len(), "diff_summary": diff_summary, "approval_rule": facts.rule_id, "checked_at": ctx.now()}),
            recommended_approvers: facts.roles.clone(),
            preview_markdown: preview.clone(),
        })?;
        let next = drafting::next_actions(ctx, &facts, None);
        Ok(Output { draft: drafting::summary(ctx, risk, &facts, preview, next), diff_summary })
    }
}
