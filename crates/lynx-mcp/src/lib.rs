//! The MCP surface: an `rmcp` server handler that lists the registry and hands every `tools/call` to
//! the governance pipeline — and does nothing else. Refusals become tool results with `isError: true`
//! and a structured `{"error": {code, message, run_id, hint}}`; every result carries `lynx/run_id` in
//! its `_meta`. Serves stdio (`lynx mcp`) and streamable HTTP (mounted by `lynx-http`).

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex},
};

use lynx_governance::{Authenticated, CallOutcome, Credential, Pipeline, ToolDefinition};
use lynx_model::error::{ErrorBody, ErrorEnvelope};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult,
        ListToolsResult, MetaObject, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter, Tool,
        ToolAnnotations, UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::{Value, json};

pub mod exact_numbers;
pub mod jsonrpc;
pub mod resources;

pub use rmcp::transport::streamable_http_server::StreamableHttpServerConfig as HttpConfig;

/// The streamable-HTTP service `lynx-http` mounts at `/mcp`.
pub type HttpService = StreamableHttpService<LynxMcp, LocalSessionManager>;

/// Where a call's identity comes from.
#[derive(Clone)]
enum Identity {
    /// One credential for the whole session (stdio: `LYNX_API_KEY` or dev flags).
    Session(Credential),
    /// The caller the HTTP surface authenticated, found in the request's extensions.
    PerRequest,
}

/// Cloned for every HTTP request (rmcp's service factory), so everything in it sits behind an `Arc`.
#[derive(Clone)]
pub struct LynxMcp {
    pipeline: Arc<Pipeline>,
    identity: Identity,
    tools: Arc<Vec<Tool>>,
    /// A stdio session's `resources/subscribe` watches, by URI, so `unsubscribe` can stop one.
    watches: Arc<Mutex<HashMap<String, tokio_util::sync::CancellationToken>>>,
}

const INSTRUCTIONS: &str = "Lynx is a governed action server. Domain tools (*.domain.*) read; cluster tools (*.cluster.*) \
create drafts for human approval; cell tools (*.cell.*) execute approved drafts exactly once. Every call is \
permission-checked and audited; a refusal says what blocked it and what to do next.";

impl LynxMcp {
    fn new(pipeline: Pipeline, identity: Identity) -> Self {
        let tools = pipeline.registry().definitions().iter().map(to_mcp_tool).collect();
        Self { pipeline: Arc::new(pipeline), identity, tools: Arc::new(tools), watches: Default::default() }
    }

    /// A handler whose calls all run as one credential (stdio).
    pub fn for_session(pipeline: Pipeline, credential: Credential) -> Self {
        Self::new(pipeline, Identity::Session(credential))
    }

    /// A handler for HTTP, where each request carries its own authenticated caller.
    pub fn per_request(pipeline: Pipeline) -> Self {
        Self::new(pipeline, Identity::PerRequest)
    }

    /// Serves MCP over this process's stdin and stdout until the client disconnects.
    pub async fn serve_stdio(self) -> Result<(), String> {
        // Each line (one message) passes `exact_numbers::rewrite` on its way from stdin to rmcp.
        let (to_rmcp, from_stdin) = tokio::io::duplex(64 * 1024);
        tokio::spawn(exact_numbers::relay_lines(tokio::io::stdin(), to_rmcp));
        let running = self.serve((from_stdin, tokio::io::stdout())).await.map_err(|e| e.to_string())?;
        running.waiting().await.map_err(|e| e.to_string())?;
        Ok(())
    }

    fn credential(&self, context: &RequestContext<RoleServer>) -> Credential {
        match &self.identity {
            Identity::Session(c) => c.clone(),
            Identity::PerRequest => context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Authenticated>())
                .map(|a| Credential::Verified(a.clone()))
                // Unreachable behind the HTTP auth layer; an empty key is refused by the identity gate.
                .unwrap_or_else(|| Credential::ApiKey("".into())),
        }
    }

    /// Subscriptions need a session that outlives a request to carry notifications: stdio's. Over
    /// HTTP (stateless, one JSON answer per request) a client polls the resource or the status tool.
    fn offers_subscriptions(&self) -> bool {
        matches!(self.identity, Identity::Session(_))
    }

    /// Starts watching a draft for this session; the watch ends with `stop`, or when `notify` fails.
    fn spawn_watch<F, Fut>(&self, credential: Credential, watched: resources::Watched, stop: tokio_util::sync::CancellationToken, notify: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let pipeline = self.pipeline.as_ref().clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = resources::watch(pipeline, credential, watched, notify) => {}
            }
        });
    }
}

/// The streamable-HTTP service for `POST /mcp`. The HTTP surface authenticates before it.
pub fn http_service(pipeline: Pipeline, config: StreamableHttpServerConfig) -> HttpService {
    let handler = LynxMcp::per_request(pipeline);
    // The factory runs per session (per request when stateless): hand out clones of one prebuilt handler.
    StreamableHttpService::new(move || Ok(handler.clone()), Arc::new(LocalSessionManager::default()), config)
}

fn to_mcp_tool(d: &ToolDefinition) -> Tool {
    let mut annotations = ToolAnnotations::with_title(d.name).read_only(d.annotations.read_only).idempotent(d.annotations.idempotent).open_world(false);
    if let Some(destructive) = d.annotations.destructive {
        annotations = annotations.destructive(destructive);
    }
    let mut meta = serde_json::Map::new();
    meta.insert("lynx/layer".into(), json!(d.layer));
    meta.insert("lynx/risk".into(), json!(d.risk));
    meta.insert("lynx/domain".into(), json!(d.domain));
    if d.annotations.destructive == Some(true) {
        // Claude Code asks the person before each call of such a tool, in every permission mode. A hint
        // to the client only: the server enforces approval whatever the client does.
        meta.insert("anthropic/requiresUserInteraction".into(), json!(true));
    }
    Tool::new(Cow::Borrowed(d.id), Cow::Borrowed(d.description), Arc::new(d.input_schema.clone()))
        .with_title(d.name)
        .with_raw_output_schema(Arc::new(d.output_schema.clone()))
        .with_annotations(annotations)
        .with_meta(MetaObject(meta))
}

/// The one place a pipeline outcome becomes an MCP tool result.
pub fn to_call_result(outcome: CallOutcome) -> CallToolResult {
    let run_id = outcome.run_id.map(|r| r.to_string());
    let mut meta = serde_json::Map::new();
    if let Some(run_id) = &run_id {
        meta.insert("lynx/run_id".into(), Value::String(run_id.clone()));
    }
    let result = match outcome.result {
        // The text content is the structured content serialized (MCP's advice for older clients); the
        // pipeline already has that text from writing the audit row.
        Ok(output) => match outcome.result_json {
            Some(text) => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(output);
                result
            }
            None => CallToolResult::structured(output),
        },
        Err(refusal) => {
            let text = format!("{}: {}\nWhat to do: {}", refusal.code, refusal.message, refusal.hint);
            let envelope = ErrorEnvelope { error: ErrorBody::new(&refusal, outcome.run_id) };
            let mut result = CallToolResult::structured_error(serde_json::to_value(envelope).unwrap_or_default());
            result.content = vec![ContentBlock::text(text)];
            result
        }
    };
    result.with_meta(Some(MetaObject(meta)))
}

impl ServerHandler for LynxMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_resources();
        let capabilities = if self.offers_subscriptions() { capabilities.enable_resources_subscribe().build() } else { capabilities.build() };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("lynx", env!("CARGO_PKG_VERSION")).with_title("Lynx governed action server"))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(&self, request: ReadResourceRequestParams, context: RequestContext<RoleServer>) -> Result<ReadResourceResponse, McpError> {
        let credential = self.credential(&context);
        resources::read(&self.pipeline, &credential, &request.uri).await.map(Into::into)
    }

    /// 2026-07-28: `subscriptions/listen` takes the draft URIs this session may watch.
    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        if !self.offers_subscriptions() {
            return None;
        }
        let uris = requested.resource_subscriptions.iter().flatten().filter(|u| resources::parse_draft_uri(u).is_some()).cloned();
        Some(SubscriptionFilter::builder().resource_subscriptions(uris).build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let credential = self.credential(context.request_context());
        let stop = tokio_util::sync::CancellationToken::new();
        for uri in context.accepted().resource_subscriptions.iter().flatten() {
            let watched = resources::subscribable(&self.pipeline, &credential, uri).await?;
            let (sink, uri) = (context.sink().clone(), uri.clone());
            self.spawn_watch(credential.clone(), watched, stop.child_token(), move || {
                let (sink, uri) = (sink.clone(), uri.clone());
                async move { sink.notify_resource_updated(uri).await.is_ok() }
            });
        }
        context.cancelled().await;
        stop.cancel();
        Ok(())
    }

    /// 2025-11-25: `resources/subscribe`, on stdio sessions.
    #[allow(deprecated)]
    async fn subscribe(&self, request: SubscribeRequestParams, context: RequestContext<RoleServer>) -> Result<(), McpError> {
        if !self.offers_subscriptions() {
            return Err(McpError::method_not_found::<rmcp::model::SubscribeRequestMethod>());
        }
        let credential = self.credential(&context);
        let watched = resources::subscribable(&self.pipeline, &credential, &request.uri).await?;
        let stop = tokio_util::sync::CancellationToken::new();
        if let Some(previous) = self.watches.lock().unwrap_or_else(|p| p.into_inner()).insert(request.uri.clone(), stop.clone()) {
            previous.cancel();
        }
        let (peer, uri) = (context.peer.clone(), request.uri);
        self.spawn_watch(credential, watched, stop, move || {
            let (peer, uri) = (peer.clone(), uri.clone());
            async move { peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)).await.is_ok() }
        });
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(&self, request: UnsubscribeRequestParams, _context: RequestContext<RoleServer>) -> Result<(), McpError> {
        if let Some(stop) = self.watches.lock().unwrap_or_else(|p| p.into_inner()).remove(&request.uri) {
            stop.cancel();
        }
        Ok(())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let credential = self.credential(&context);
        let outcome = self.pipeline.call(&credential, &request.name, request.arguments.map(Value::Object)).await;
        Ok(to_call_result(outcome).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(r: &CallToolResult) -> &str {
        r.content[0].as_text().map(|t| t.text.as_str()).expect("text content")
    }

    /// The text content is the structured content's JSON, whether the pipeline handed over the audited
    /// text or (for a result too large to audit whole) the surface serializes it itself.
    #[test]
    fn text_content_is_the_structured_content() {
        let output = json!({"tenant_id": "tenant-123", "plan": "enterprise"});
        for result_json in [Some(output.to_string()), None] {
            let r = to_call_result(CallOutcome { run_id: Some(lynx_model::RunId::new()), result: Ok(output.clone()), result_json });
            assert_eq!(r.is_error, Some(false));
            assert_eq!(r.structured_content.as_ref(), Some(&output));
            assert_eq!(serde_json::from_str::<Value>(text_of(&r)).unwrap(), output);
        }
    }
}
