//! The C2SP `tlog-checkpoint` body (https://c2sp.org/tlog-checkpoint): the log's origin, the tree
//! size in decimal and the base64 tree head, one per line — the text a signed note signs.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};

use crate::{
    merkle::Hash,
    note::{NoteError, NoteSigner, NoteVerifier},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
}

impl Checkpoint {
    pub fn to_text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }

    /// Reads a checkpoint body (extension lines after the third are allowed and ignored).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(CheckpointError::Malformed("a checkpoint is origin, size and root hash, one per line"));
        };
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("the origin line is empty"));
        }
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(CheckpointError::Malformed("the tree size is a decimal number without leading zeros"));
        }
        let size = size.parse().map_err(|_| CheckpointError::Malformed("the tree size is too large"))?;
        let root = BASE64.decode(root).ok().and_then(|r| Hash::try_from(r).ok()).ok_or(CheckpointError::Malformed("the root hash is 32 bytes of base64"))?;
        Ok(Self { origin: origin.to_string(), size, root })
    }

    /// The signed note of this checkpoint.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, NoteError> {
        signer.sign(&self.to_text())
    }

    /// The checkpoint a signed note holds, once its signature by `verifier` is checked.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, CheckpointError> {
        Self::parse(verifier.open(note)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_through_its_signed_note() {
        let signer = NoteSigner::from_seed("lynx.example.com", [3; 32]).unwrap();
        let cp = Checkpoint { origin: "lynx.example.com/tenants/tenant-123".into(), size: 42, root: [9; 32] };
        let note = cp.sign(&signer).unwrap();
        assert!(note.starts_with("lynx.example.com/tenants/tenant-123\n42\nCQkJ"));
        assert_eq!(Checkpoint::open(&note, &signer.verifier()).unwrap(), cp);
        for bad in ["o\n042\nCQ==\n", "o\n-1\nCQ==\n", "o\n1\nnot base64\n", "\n1\nCQkJ\n", "o\n1\n"] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
