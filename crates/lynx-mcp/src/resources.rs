//! Drafts as MCP resources: `lynx://drafts/{draft_id}` (a resource template) reads where a draft
//! stands — the same answer as `workflow.domain.status.read {draft_id}`, because reading one *is*
//! that tool call, through the pipeline with all its gates and its audit row. On stdio sessions a
//! client may subscribe (`resources/subscribe` on 2025-11-25, `subscriptions/listen` on 2026-07-28)
//! and is sent `notifications/resources/updated` when the draft moves; the notification carries only
//! the URI, so what the draft says still flows through an audited read.

use std::time::Duration;

use lynx_governance::{Credential, Pipeline, draft_status};
use lynx_model::{DraftId, ErrorCode, Refusal, error::ErrorBody};
use rmcp::{
    ErrorData as McpError,
    model::{ErrorCode as McpCode, ReadResourceResult, ResourceContents, ResourceTemplate},
};
use serde_json::json;

use crate::jsonrpc;

pub const DRAFT_URI_TEMPLATE: &str = "lynx://drafts/{draft_id}";
const DRAFT_URI_PREFIX: &str = "lynx://drafts/";

/// How often a subscribed draft is looked at. A person's decision is minutes away; two seconds is
/// prompt and costs one indexed read per subscription.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

pub fn draft_uri(id: DraftId) -> String {
    format!("{DRAFT_URI_PREFIX}{id}")
}

pub fn parse_draft_uri(uri: &str) -> Option<DraftId> {
    uri.strip_prefix(DRAFT_URI_PREFIX).and_then(|id| DraftId::parse(id).ok())
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(DRAFT_URI_TEMPLATE, "draft")
            .with_title("A draft and where it stands")
            .with_description(
                "A draft of your tenant: its status, the approvals it has and needs, the decisions, when it expires, whether it can \
                 be executed now and by which tool, and what to do next — the same as workflow.domain.status.read {draft_id}.",
            )
            .with_mime_type("application/json"),
    ]
}

/// A refusal as the JSON-RPC error a resource request answers with: an unknown (or another tenant's)
/// draft is MCP's "resource not found".
pub fn to_mcp_error(refusal: &Refusal) -> McpError {
    let code = match refusal.code {
        ErrorCode::DraftNotFound | ErrorCode::NotFound => McpCode::RESOURCE_NOT_FOUND,
        ErrorCode::InvalidInput => McpCode::INVALID_PARAMS,
        other => McpCode(jsonrpc::code_for(other) as i32),
    };
    McpError::new(code, format!("{} (what to do: {})", refusal.message, refusal.hint), Some(json!({"error": ErrorBody::new(refusal, None)})))
}

fn bad_uri(uri: &str) -> Refusal {
    Refusal::new(
        ErrorCode::InvalidInput,
        format!("{uri:?} is not a Lynx resource"),
        format!("Lynx's resources are {DRAFT_URI_TEMPLATE}, with a draft id (a UUID) from a cluster tool's answer."),
    )
}

/// Reads a draft resource: the status tool's answer about it.
pub async fn read(pipeline: &Pipeline, credential: &Credential, uri: &str) -> Result<ReadResourceResult, McpError> {
    let id = parse_draft_uri(uri).ok_or_else(|| to_mcp_error(&bad_uri(uri)))?;
    let args = json!({"draft_id": id, "include_events": false});
    let outcome = pipeline.call(credential, "workflow.domain.status.read", Some(args)).await;
    let output = outcome.result.map_err(|r| to_mcp_error(&r))?;
    let state = output.get("drafts").and_then(|d| d.get(0)).ok_or_else(|| {
        to_mcp_error(&Refusal::new(ErrorCode::Internal, "The status tool answered without the draft", "Try again; report it if it persists."))
    })?;
    let text = serde_json::to_string(state).unwrap_or_default();
    Ok(ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type("application/json")]))
}

/// What a subscription watches: a draft, and where it stood when the subscription began (taken
/// before the subscribe is answered, so a change right after it is not missed).
pub struct Watched {
    pub id: DraftId,
    seen: String,
}

/// Checks that `uri` names a draft the caller can see, and notes where it stands.
pub async fn subscribable(pipeline: &Pipeline, credential: &Credential, uri: &str) -> Result<Watched, McpError> {
    let id = parse_draft_uri(uri).ok_or_else(|| to_mcp_error(&bad_uri(uri)))?;
    let who = pipeline.authenticate(credential).await.map_err(|r| to_mcp_error(&r))?;
    match draft_status::read(pipeline.services(), who.tenant_id(), id).await {
        Ok(Some(state)) => Ok(Watched { id, seen: serde_json::to_string(&state).unwrap_or_default() }),
        Ok(None) => Err(to_mcp_error(&lynx_governance::execution::draft_not_found(id, who.tenant_id()))),
        Err(r) => Err(to_mcp_error(&r)),
    }
}

/// Watches a draft until `changed` says the client is gone or the caller's key stops working: every
/// `WATCH_EVERY`, where the draft stands is compared with what it was, and a change is told.
pub async fn watch<F, Fut>(pipeline: Pipeline, credential: Credential, watched: Watched, changed: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let Watched { id, mut seen } = watched;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        // Authenticated again each time: a key revoked mid-session stops its subscriptions too.
        let Ok(who) = pipeline.authenticate(&credential).await else { return };
        match draft_status::read(pipeline.services(), who.tenant_id(), id).await {
            Ok(state) => {
                let now = serde_json::to_string(&state).unwrap_or_default();
                if now != seen {
                    if !changed().await {
                        return;
                    }
                    seen = now;
                }
            }
            // Storage or the Kernel is away: look again next time.
            Err(r) => tracing::debug!(code = %r.code, "draft subscription could not look at its draft"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_uris_round_trip_and_nothing_else_parses() {
        let id = DraftId::new();
        assert_eq!(parse_draft_uri(&draft_uri(id)), Some(id));
        for bad in ["lynx://drafts/", "lynx://drafts/not-a-uuid", "file:///etc/passwd", "lynx://executions/00000000-0000-0000-0000-000000000000"] {
            assert_eq!(parse_draft_uri(bad), None, "{bad}");
        }
        assert_eq!(to_mcp_error(&bad_uri("x")).code, McpCode::INVALID_PARAMS);
    }
}
