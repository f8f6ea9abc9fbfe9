//! Transparency-log formats, with no I/O and no knowledge of Lynx: RFC 6962 Merkle trees and their
//! proofs (`merkle`), C2SP signed notes with Ed25519 (`note`) and tlog-checkpoint bodies
//! (`checkpoint`). Lynx anchors each tenant's audit trail with them; anyone can check what they
//! produce with any implementation of those standards.

pub mod checkpoint;
pub mod merkle;
pub mod note;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use merkle::{Frontier, Hash, ProofError};
pub use note::{NoteError, NoteSigner, NoteVerifier};
