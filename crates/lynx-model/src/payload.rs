//! What a draft proposes: one typed payload per draft type. The cluster tool that makes the draft
//! writes it, the cell tool that executes the draft reads it back through the same type, and the store
//! keeps it as the draft's `payload` JSON (the `draft_type` column says which shape it is). A payload
//! never changes after the draft is created.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    draft::DraftType,
    money::{Amount, Currency},
    params::IsoDate,
};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DraftPayload {
    Docs(DocsPayload),
    Workflow(WorkflowPayload),
    Payment(PaymentPayload),
}

/// A document for the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocsPayload {
    pub doc_type: String,
    pub title: String,
    #[serde(default)]
    pub content_outline: Option<String>,
    #[serde(default)]
    pub source_refs: Vec<String>,
}

/// A workflow to publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowPayload {
    pub workflow_kind: String,
    pub name: String,
    pub steps: Vec<WorkflowStep>,
    #[serde(default)]
    pub linked_object: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStep {
    pub name: String,
    #[serde(default)]
    pub required_role: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
}

/// A vendor payment to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentPayload {
    pub vendor_id: String,
    pub amount: Amount,
    pub currency: Currency,
    pub due_date: IsoDate,
    #[serde(default)]
    pub invoice_refs: Vec<String>,
}

impl DraftPayload {
    pub fn draft_type(&self) -> DraftType {
        match self {
            DraftPayload::Docs(_) => DraftType::Docs,
            DraftPayload::Workflow(_) => DraftType::Workflow,
            DraftPayload::Payment(_) => DraftType::VpmPayment,
        }
    }

    /// A stored payload, read as the shape its draft type has.
    pub fn from_json(draft_type: DraftType, value: Value) -> Result<Self, String> {
        let payload = match draft_type {
            DraftType::Docs => serde_json::from_value(value).map(DraftPayload::Docs),
            DraftType::Workflow => serde_json::from_value(value).map(DraftPayload::Workflow),
            DraftType::VpmPayment => serde_json::from_value(value).map(DraftPayload::Payment),
        };
        payload.map_err(|e| format!("a {draft_type} draft's payload does not read back: {e}"))
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The amount the draft is about, when it is about money.
    pub fn amount(&self) -> Option<Decimal> {
        match self {
            DraftPayload::Payment(p) => Some(p.amount.value()),
            _ => None,
        }
    }

    /// What a person calls the draft: a document's title, a workflow's name (a payment has none; its
    /// vendor and amount say what it is).
    pub fn title(&self) -> Option<&str> {
        match self {
            DraftPayload::Docs(d) => Some(&d.title),
            DraftPayload::Workflow(w) => Some(&w.name),
            DraftPayload::Payment(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_read_back_as_written_and_as_stored_before() {
        let stored = [
            (DraftType::Docs, json!({"doc_type": "ADR", "title": "T", "content_outline": null, "source_refs": []})),
            (DraftType::Workflow, json!({"workflow_kind": "approval", "name": "N", "steps": [{"name": "s", "required_role": null, "action": null}], "linked_object": null})),
            (DraftType::VpmPayment, json!({"vendor_id": "V-001", "amount": "500.00", "currency": "USD", "due_date": "2026-12-31", "invoice_refs": ["INV-1"]})),
        ];
        for (t, json) in stored {
            let p = DraftPayload::from_json(t, json.clone()).unwrap();
            assert_eq!(p.draft_type(), t);
            assert_eq!(p.to_json(), json, "{t}: the stored JSON is unchanged");
        }
        let e = DraftPayload::from_json(DraftType::VpmPayment, json!({"vendor_id": "V-001"})).unwrap_err();
        assert!(e.contains("amount"), "a missing key is an error, never an empty string: {e}");
    }
}
