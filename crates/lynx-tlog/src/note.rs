//! C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys: text, a blank line, and
//! signature lines `— <key name> <base64(key ID ‖ signature)>`. The key ID is the first four bytes of
//! SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). Keys travel as text: the signer key
//! `PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 ‖ seed)>` and the verifier key
//! `<name>+<key ID hex>+<base64(0x01 ‖ public key)>` — the encodings Go's `golang.org/x/mod/sumdb/note`
//! reads and writes.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// U+2014 EM DASH and a space: how a signature line begins.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("the note carries no signature by {0}")]
    NotSigned(String),
    #[error("the signature by {0} does not verify: the note was altered or signed by another key")]
    BadSignature(String),
}

/// A key name: non-empty, no Unicode white space, no `+`.
fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::MalformedKey("a key name is non-empty and holds no spaces and no '+'"));
    }
    Ok(())
}

fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn typed_key(encoded: &str) -> Result<[u8; 32], NoteError> {
    let bytes = BASE64.decode(encoded).map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
    match bytes.split_first() {
        Some((&ED25519, key)) => key.try_into().map_err(|_| NoteError::MalformedKey("an Ed25519 key is 32 bytes")),
        _ => Err(NoteError::MalformedKey("only Ed25519 keys (type 0x01) are supported")),
    }
}

/// Signs notes.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner").field("name", &self.name).field("key", &"[redacted]").finish()
    }
}

impl NoteSigner {
    /// A signer from a 32-byte secret seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, &key.verifying_key());
        Ok(Self { name: name.to_string(), key, id })
    }

    /// Reads `PRIVATE+KEY+<name>+<id>+<key>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or(NoteError::MalformedKey("a signer key starts with PRIVATE+KEY+"))?;
        // The key is base64, which may itself hold '+': it is whatever follows the second '+'.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("a signer key is PRIVATE+KEY+<name>+<id>+<key>"));
        };
        let signer = Self::from_seed(name, typed_key(key)?)?;
        if hex::encode(signer.id) != id {
            return Err(NoteError::MalformedKey("the key ID does not match the key"));
        }
        Ok(signer)
    }

    /// The signer key as text (`PRIVATE+KEY+…`): secret.
    pub fn to_text(&self) -> String {
        let mut typed = vec![ED25519];
        typed.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{}+{}", self.name, hex::encode(self.id), BASE64.encode(typed))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), key: self.key.verifying_key(), id: self.id }
    }

    /// `text` (which must end with a newline and hold no blank line) signed: the signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') || text.contains("\n\n") || text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed("a note's text ends with a newline and holds no blank line or control character"));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("{text}\n{SIGNATURE_PREFIX}{} {}\n", self.name, BASE64.encode(blob)))
    }
}

/// Checks notes against one public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    id: [u8; 4],
}

impl NoteVerifier {
    /// Reads `<name>+<id>+<key>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey("a verifier key is <name>+<id>+<key>"));
        };
        check_name(name)?;
        let key = VerifyingKey::from_bytes(&typed_key(key)?).map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        let verifier = Self { name: name.to_string(), id: key_id(name, &key), key };
        if hex::encode(verifier.id) != id {
            return Err(NoteError::MalformedKey("the key ID does not match the key"));
        }
        Ok(verifier)
    }

    /// The verifier key as text (`<name>+<id>+<key>`): public.
    pub fn to_text(&self) -> String {
        let mut typed = vec![ED25519];
        typed.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), BASE64.encode(typed))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The note's text, once a signature by this key verifies. Signatures by other keys are ignored;
    /// a signature by this key that fails rejects the note.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(NoteError::Malformed("the signatures do not end with a newline"));
        }
        for line in signatures.lines() {
            let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(NoteError::Malformed("a signature line starts with an em dash and a space"))?;
            let (name, blob) = rest.split_once(' ').ok_or(NoteError::Malformed("a signature line is '— <name> <signature>'"))?;
            let blob = BASE64.decode(blob).map_err(|_| NoteError::Malformed("a signature is base64"))?;
            if blob.len() < 4 {
                return Err(NoteError::Malformed("a signature starts with a four-byte key ID"));
            }
            if name != self.name || blob[..4] != self.id {
                continue;
            }
            let signature: [u8; 64] = blob[4..].try_into().map_err(|_| NoteError::BadSignature(self.to_text()))?;
            return self
                .key
                .verify_strict(text.as_bytes(), &Signature::from_bytes(&signature))
                .map(|()| text)
                .map_err(|_| NoteError::BadSignature(self.to_text()));
        }
        Err(NoteError::NotSigned(self.to_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the C2SP signed-note specification (and of Go's sumdb/note).
    #[test]
    fn the_specifications_example_verifies() {
        let verifier = NoteVerifier::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").unwrap();
        let note = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert_eq!(verifier.open(note).unwrap(), "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n");
        let altered = note.replace("answer", "Answer");
        assert!(matches!(verifier.open(&altered), Err(NoteError::BadSignature(_))));
    }

    #[test]
    fn keys_whose_base64_holds_a_plus_read_back() {
        let mut found = 0;
        for seed in 0..64u8 {
            let signer = NoteSigner::from_seed("lynx.example.com", [seed; 32]).unwrap();
            let (private, public) = (signer.to_text(), signer.verifier().to_text());
            found += usize::from(private[12..].matches('+').count() > 2 || public.matches('+').count() > 2);
            assert_eq!(NoteSigner::parse(&private).unwrap().verifier(), signer.verifier());
            assert_eq!(NoteVerifier::parse(&public).unwrap(), signer.verifier());
        }
        assert!(found > 0, "some of the keys tried hold a '+' in their base64");
    }

    #[test]
    fn sign_then_open_and_keys_round_trip() {
        let signer = NoteSigner::from_seed("lynx.example.com", [7u8; 32]).unwrap();
        let again = NoteSigner::parse(&signer.to_text()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        let verifier = NoteVerifier::parse(&signer.verifier().to_text()).unwrap();
        let note = signer.sign("lynx.example.com/tenants/t\n3\nAAAA\n").unwrap();
        assert_eq!(verifier.open(&note).unwrap(), "lynx.example.com/tenants/t\n3\nAAAA\n");
        // Another key's signature is no signature by this one.
        let other = NoteSigner::from_seed("lynx.example.com", [8u8; 32]).unwrap();
        assert!(matches!(verifier.open(&other.sign("x\n").unwrap()), Err(NoteError::NotSigned(_))));
        // A tampered key ID or text is refused.
        assert!(NoteVerifier::parse(&verifier.to_text().replacen('+', "+0", 1)).is_err());
        assert!(signer.sign("no newline").is_err() && signer.sign("a\n\nb\n").is_err());
        assert!(NoteSigner::from_seed("has space", [1; 32]).is_err() && NoteSigner::from_seed("a+b", [1; 32]).is_err());
        assert!(!format!("{signer:?}").contains(&signer.to_text()[20..]), "Debug never shows the key");
    }
}
