//! `GET /api/audit/export?format=csv|json`: the caller's tenant's whole audit trail in `seq` order,
//! streamed a page at a time so a large trail never sits in memory.

use std::collections::HashMap;

use axum::{
    Extension,
    body::Body,
    extract::{Query, State},
    http::header,
    response::{IntoResponse, Response},
};
use lynx_governance::Authenticated;
use lynx_governance::audit::{CSV_HEADER, csv_line, event_json};
use lynx_model::Refusal;
use tokio_stream::wrappers::ReceiverStream;

use super::query;
use crate::{AppState, error::ApiError};

pub async fn export(
    State(state): State<AppState>,
    Extension(who): Extension<Authenticated>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    query::known(&q, &["format"])?;
    let csv = match query::param(&q, "format").unwrap_or("json") {
        "csv" => true,
        "json" => false,
        _ => return Err(Refusal::invalid_input("format", "must be csv or json").into()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let store = state.pipeline.services().store.clone();
    let tenant = who.tenant_id().clone();
    tokio::spawn(async move {
        let mut after = 0;
        let _ = tx.send(Ok(if csv { CSV_HEADER.to_string() } else { "[".to_string() })).await;
        let mut first = true;
        loop {
            let page = match store.audit_chain_page(&tenant, after, 1000).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let Some(last) = page.last() else { break };
            after = last.seq;
            let mut chunk = String::new();
            for e in &page {
                if csv {
                    chunk.push_str(&csv_line(e));
                } else {
                    if !first {
                        chunk.push(',');
                    }
                    first = false;
                    chunk.push_str(&serde_json::to_string(&event_json(e)).unwrap_or_default());
                }
            }
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        if !csv {
            let _ = tx.send(Ok("]".to_string())).await;
        }
    });
    let (content_type, name) = if csv { ("text/csv; charset=utf-8", "audit.csv") } else { ("application/json", "audit.json") };
    Ok((
        [(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}-{name}\"", who.tenant_id()))],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}
