//! The audit event and its hash chain.
//!
//! Each tenant's events form a chain: an event's `hash` is SHA-256 over a canonical encoding of its
//! stored content plus the previous event's hash. The encoding uses the exact stored text of the JSON
//! columns, so verifying never depends on how a JSON library orders keys.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{RunId, TenantId, vocab::RunStatus};

/// `prev_hash` of a tenant's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    ToolCall,
    Refusal,
    HumanAction,
    System,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ToolCall => "tool_call",
            EventType::Refusal => "refusal",
            EventType::HumanAction => "human_action",
            EventType::System => "system",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [EventType::ToolCall, EventType::Refusal, EventType::HumanAction, EventType::System]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// An event before the store places it in its tenant's chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAuditEvent {
    pub event_id: uuid::Uuid,
    pub run_id: RunId,
    pub tenant_id: TenantId,
    pub tool_id: String,
    pub event_type: EventType,
    pub status: RunStatus,
    pub actor_id: String,
    /// JSON text, stored and hashed exactly as given.
    pub input_data: Option<String>,
    /// JSON text, stored and hashed exactly as given.
    pub output_data: Option<String>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    /// The Lynx instance that wrote it (`LYNX_INSTANCE_ID`, or host and process id).
    pub instance_id: Option<String>,
}

/// An event as stored: its place in the chain and its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    #[serde(flatten)]
    pub event: NewAuditEvent,
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// A signed checkpoint of a tenant's audit tree, as stored: the tree's size and head, its compact
/// range (to grow it later without reading old rows), and the signed note.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointRecord {
    pub tenant_id: TenantId,
    /// How many of the tenant's rows (seq 1..=tree_size) the tree holds.
    pub tree_size: i64,
    /// The tree head, hex.
    pub root_hash: String,
    /// The heads of the tree's perfect subtrees, leftmost first, hex.
    pub frontier: Vec<String>,
    /// The C2SP signed note of the tlog-checkpoint body.
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub instance_id: Option<String>,
}

/// A verification that passed, recorded by `lynx audit verify`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationRecord {
    pub tenant_id: TenantId,
    pub verified_at: DateTime<Utc>,
    /// Rows of the tenant's chain checked.
    pub events: i64,
    /// The newest signed checkpoint they were checked against (`None`: the chain alone).
    pub checkpoint_size: Option<i64>,
    pub verified_by: String,
}

/// The leaf a row is in the tenant's Merkle tree: the 32 bytes of its chain hash. (The chain hash
/// covers the row's content and its predecessor's hash, so the tree covers every row whole.)
pub fn leaf_data(hash_hex: &str) -> Option<[u8; 32]> {
    hex::decode(hash_hex).ok()?.try_into().ok()
}

/// The one canonical encoding of an event's content, used both to write and to verify: a JSON array
/// of the columns in this order, hashed as it is written (no intermediate `Value`, no copies of the
/// JSON columns — this runs twice per call).
pub fn chain_hash(e: &NewAuditEvent, seq: i64, prev_hash: &str) -> String {
    let canonical = (
        e.event_id,
        e.run_id,
        e.tenant_id.as_str(),
        &e.tool_id,
        e.event_type.as_str(),
        e.status.as_str(),
        &e.actor_id,
        &e.input_data,
        &e.output_data,
        &e.error_message,
        e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        e.duration_ms,
        &e.instance_id,
        seq,
        prev_hash,
    );
    canonical_hash(&canonical)
}

/// SHA-256 (hex) of a value's compact JSON, as `serde_json` writes it — the chain hash's encoding.
pub fn canonical_hash(value: &impl Serialize) -> String {
    let mut hasher = HashWriter(Sha256::new());
    serde_json::to_writer(&mut hasher, value).expect("strings, numbers and nulls always serialize");
    hex::encode(hasher.0.finalize())
}

/// Feeds serialized bytes straight into the hash.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> NewAuditEvent {
        NewAuditEvent {
            event_id: uuid::Uuid::nil(),
            run_id: RunId(uuid::Uuid::nil()),
            tenant_id: TenantId::parse("t").unwrap(),
            tool_id: "x.domain.y.read".into(),
            event_type: EventType::ToolCall,
            status: RunStatus::Started,
            actor_id: "u".into(),
            input_data: Some("{}".into()),
            output_data: None,
            error_message: None,
            created_at: DateTime::from_timestamp(0, 0).unwrap(),
            duration_ms: None,
            instance_id: Some("i-1".into()),
        }
    }

    #[test]
    fn hash_covers_content_position_and_predecessor() {
        let e = event();
        let h = chain_hash(&e, 1, GENESIS_HASH);
        assert_eq!(h.len(), 64);
        assert_eq!(h, chain_hash(&e, 1, GENESIS_HASH));
        assert_ne!(h, chain_hash(&e, 2, GENESIS_HASH));
        assert_ne!(h, chain_hash(&e, 1, &h));
        let mut changed = e.clone();
        changed.input_data = Some("{\"a\":1}".into());
        assert_ne!(h, chain_hash(&changed, 1, GENESIS_HASH));
    }

    /// The encoding is a stored format: chains written by earlier versions must keep verifying. This is
    /// the array every version has hashed, spelled out as a JSON value.
    #[test]
    fn encoding_is_the_json_array_of_the_columns() {
        let mut e = event();
        e.output_data = Some("{\"quote\":\"\\\"x\\\"\",\"n\":1}".into());
        e.error_message = Some("ünïcode \n line".into());
        e.duration_ms = Some(12);
        let prev = "ab".repeat(32);
        let spelled = serde_json::json!([
            e.event_id.to_string(), e.run_id.to_string(), e.tenant_id.as_str(), e.tool_id, e.event_type.as_str(),
            e.status.as_str(), e.actor_id, e.input_data, e.output_data, e.error_message,
            e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true), e.duration_ms, e.instance_id, 7, prev,
        ]);
        let expected = hex::encode(Sha256::digest(spelled.to_string().as_bytes()));
        assert_eq!(chain_hash(&e, 7, &prev), expected);
        // Pinned bytes, not serde_json compared with itself: a change to serde_json's escaping or to
        // this encoding would otherwise pass here and break every stored chain.
        assert_eq!(chain_hash(&e, 7, &prev), "b2bcbc89314a08aa34837562b98b82b3e969e3aed68daf7910a89902868ccf99");
    }
}
