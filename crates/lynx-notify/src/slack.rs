//! The Slack-compatible body (`--format slack`): a message for a Slack incoming webhook, saying what
//! happened to which draft, for how much and to whom, at what risk, with a link to its dashboard page.

use serde_json::{Value, json};

pub(crate) fn message(payload: &Value, public_url: &str) -> Value {
    let kind = payload["type"].as_str().unwrap_or("event");
    let d = &payload["data"];
    let what = match kind {
        "draft.submitted" => "Draft submitted for approval",
        "draft.approved" if d["status"] == "APPROVED" => "Draft approved",
        "draft.approved" => "Approval recorded",
        "draft.rejected" => "Draft rejected",
        "draft.expired" => "Draft expired without a decision",
        "draft.cancelled" => "Draft cancelled",
        "execution.succeeded" => "Executed",
        "execution.failed" => "Execution failed",
        "settlement.updated" => "Settlement updated",
        "audit.checkpoint" => "Audit checkpoint signed",
        _ => kind,
    };
    let text_of = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    let subject = match (d["draft_id"].as_str(), d["payment_id"].as_str()) {
        (Some(draft), _) => format!("{} draft {draft}", text_of(&d["draft_type"])),
        (None, Some(payment)) => format!("payment {payment}: {} → {}", text_of(&d["from"]), text_of(&d["status"])),
        (None, None) if !d["tree_size"].is_null() => format!("tenant {}: {} rows", text_of(&d["tenant_id"]), text_of(&d["tree_size"])),
        (None, None) => String::new(),
    };
    let mut lines = vec![format!("*{what}* · {subject}")];
    if !d["amount"].is_null() {
        let vendor = d["vendor_name"].as_str().or(d["vendor_id"].as_str()).unwrap_or("?");
        lines.push(format!("Amount: {} {} to {vendor}", text_of(&d["amount"]), text_of(&d["currency"])));
    }
    if let Some(title) = d["title"].as_str() {
        lines.push(format!("Title: {title}"));
    }
    if let Some(risk) = d["risk_level"].as_str() {
        lines.push(format!("Risk: {risk}"));
    }
    if let (Some(n), Some(m)) = (d["approvals_recorded"].as_u64(), d["approvals_required"].as_u64()) {
        lines.push(format!("Approvals: {n} of {m}"));
    }
    if let Some(reason) = d["rejection_reason"].as_str() {
        lines.push(format!("Reason: {reason}"));
    }
    if let Some(path) = d["dashboard_path"].as_str() {
        lines.push(format!("<{}{path}|Open in the Lynx dashboard>", public_url.trim_end_matches('/')));
    }
    json!({"text": lines.join("\n")})
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_payment_reads_as_a_slack_message() {
        let payload = serde_json::json!({"type": "draft.submitted", "data": {"draft_type": "vpm_payment", "draft_id": "d1", "amount": "500.00", "currency": "USD", "vendor_name": "Acme", "risk_level": "medium", "approvals_recorded": 0, "approvals_required": 2, "dashboard_path": "/drafts/d1"}});
        let text = super::message(&payload, "https://lynx.example/")["text"].as_str().unwrap().to_string();
        assert!(text.contains("Draft submitted") && text.contains("500.00 USD to Acme") && text.contains("0 of 2"), "{text}");
        assert!(text.contains("<https://lynx.example/drafts/d1|"), "{text}");
        let settled = serde_json::json!({"type": "settlement.updated", "data": {"payment_id": "p1", "from": "queued", "status": "processing", "amount": "5.00", "currency": "USD", "vendor_id": "V-001"}});
        let text = super::message(&settled, "https://lynx.example")["text"].as_str().unwrap().to_string();
        assert!(text.starts_with("*Settlement updated* · payment p1: queued → processing") && !text.contains("null"), "{text}");
    }
}
