//! Anchoring the audit trail outside the database. Each tenant's rows, in `seq` order, are the leaves
//! of an RFC 6962 Merkle tree (a row's leaf is its chain hash). A checkpoint signs the tree's size and
//! head as a C2SP tlog-checkpoint inside a signed note; it is stored in the database, written as a
//! file where the database's administrator cannot rewrite it, and sent as an `audit.checkpoint`
//! event. Each new checkpoint is proven consistent with the tenant's last before it is signed.
//!
//! Verification needs no trust in Lynx: the checkpoint files, the verifier key and the rows suffice
//! to find truncation (fewer rows than a checkpoint covers), rewriting (a different head), forgery (a
//! signature that fails) and a vanished tenant; a proof file (`prove`) carries a run's rows, their
//! inclusion proofs and the signed checkpoint, and verifies with no database at all.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use lynx_model::{
    ErrorCode, Refusal, RunId, TenantId,
    audit::{AuditEvent, CheckpointRecord, leaf_data},
    store::{AuditFilter, Store},
};
use lynx_tlog::{
    Checkpoint, Frontier, Hash, NoteError, NoteSigner, NoteVerifier,
    merkle::{self, Grown, leaf_hash},
};
use serde::{Deserialize, Serialize};

use crate::services::Services;

/// Rows read per page while building a tree.
const PAGE: u32 = 50_000;

/// What signs checkpoints, and where their files go.
pub struct Anchor {
    signer: NoteSigner,
    dir: Option<PathBuf>,
}

/// A new Ed25519 checkpoint signing key named `name` (a random seed).
pub fn new_signing_key(name: &str) -> Result<NoteSigner, NoteError> {
    NoteSigner::from_seed(name, rand::random())
}

/// The log of a tenant: `<key name>/tenants/<tenant>`.
pub fn origin(key_name: &str, tenant: &TenantId) -> String {
    format!("{key_name}/tenants/{tenant}")
}

/// A checkpoint file's name: `<tenant>.<size, 12 digits>.checkpoint` (tenant ids hold no `/`).
pub fn file_name(tenant: &TenantId, size: i64) -> String {
    format!("{tenant}.{size:012}.checkpoint")
}

fn corrupt(what: String) -> Refusal {
    Refusal::new(
        ErrorCode::Internal,
        what,
        "The audit trail or its stored checkpoint was altered: run `lynx audit verify --checkpoints DIR --key VKEY` to find what changed.",
    )
}

fn hex_hash(text: &str) -> Result<Hash, Refusal> {
    leaf_data(text).ok_or_else(|| corrupt(format!("stored hash {text:?} is not 32 bytes of hex")))
}

/// What one tenant's checkpoint round did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Checkpointed {
    /// A new checkpoint was signed and stored (and written, when a directory is configured).
    Signed { tenant_id: TenantId, tree_size: i64, file: Option<PathBuf> },
    /// The tree has not grown since its last checkpoint.
    Unchanged { tenant_id: TenantId, tree_size: i64 },
    /// Another instance stored the checkpoint of this size first.
    TakenByAnother { tenant_id: TenantId, tree_size: i64 },
}

impl Anchor {
    pub fn new(signer: NoteSigner, dir: Option<PathBuf>) -> Self {
        Self { signer, dir }
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Checkpoints every tenant whose tree grew. One tenant's failure does not stop the others; the
    /// failures are returned beside what was done.
    pub async fn checkpoint_all(&self, services: &Services) -> Result<(Vec<Checkpointed>, Vec<(TenantId, Refusal)>), Refusal> {
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for (tenant, head) in services.store.audit_heads().await? {
            match self.checkpoint(services, &tenant, head).await {
                Ok(c) => done.push(c),
                Err(r) => failed.push((tenant, r)),
            }
        }
        Ok((done, failed))
    }

    /// The tenant's tree grown to `head` rows, proven consistent with its last checkpoint, signed.
    pub async fn checkpoint(&self, services: &Services, tenant: &TenantId, head: i64) -> Result<Checkpointed, Refusal> {
        let last = services.store.latest_checkpoint(tenant).await?;
        let mut tree = match &last {
            Some(last) if last.tree_size >= head => return Ok(Checkpointed::Unchanged { tenant_id: tenant.clone(), tree_size: last.tree_size }),
            Some(last) => self.frontier_of(services, last).await?,
            None => Frontier::default(),
        };
        let old = tree.clone();
        let added = leaves(services.store.as_ref(), tenant, old.size() as i64, head).await?;
        for leaf in &added {
            tree.push(*leaf);
        }
        if added.is_empty() {
            return Ok(Checkpointed::Unchanged { tenant_id: tenant.clone(), tree_size: old.size() as i64 });
        }
        let root = tree.root();
        if old.size() > 0 {
            // The new head must extend the signed old one; a proof that fails means the old rows or
            // the stored frontier changed, and nothing is signed.
            let proof = merkle::consistency_proof(&Grown::new(&old, &added), old.size(), tree.size()).map_err(|e| corrupt(e.to_string()))?;
            merkle::verify_consistency(old.size(), tree.size(), &old.root(), &root, &proof)
                .map_err(|e| corrupt(format!("tenant {tenant}: the tree of {} rows is not consistent with its last checkpoint: {e}", tree.size())))?;
        }
        let checkpoint = Checkpoint { origin: origin(self.signer.name(), tenant), size: tree.size(), root };
        let note = checkpoint.sign(&self.signer).map_err(|e| Refusal::internal(&format!("signing a checkpoint: {e}")))?;
        let record = CheckpointRecord {
            tenant_id: tenant.clone(),
            tree_size: tree.size() as i64,
            root_hash: hex::encode(root),
            frontier: tree.heads().iter().map(hex::encode).collect(),
            note,
            created_at: services.clock.now(),
            instance_id: Some(services.runtime.instance_id.clone()),
        };
        if !services.store.insert_checkpoint(&record).await? {
            return Ok(Checkpointed::TakenByAnother { tenant_id: tenant.clone(), tree_size: record.tree_size });
        }
        let file = match &self.dir {
            Some(dir) => Some(write_file(dir, &record).map_err(|e| {
                Refusal::new(
                    ErrorCode::Internal,
                    format!("checkpoint {} of tenant {tenant} is stored but its file could not be written: {e}", record.tree_size),
                    "Check that LYNX_AUDIT_CHECKPOINT_DIR exists and is writable; the next checkpoint is written there again.",
                )
            })?),
            None => None,
        };
        Ok(Checkpointed::Signed { tenant_id: tenant.clone(), tree_size: record.tree_size, file })
    }

    /// The tree of the last checkpoint, from its stored frontier, once the frontier is shown to give
    /// the head the signed note names. A checkpoint signed by another key (the key was rotated) is
    /// rebuilt from the rows instead and must give the head it stored.
    async fn frontier_of(&self, services: &Services, last: &CheckpointRecord) -> Result<Frontier, Refusal> {
        let tenant = &last.tenant_id;
        let signed_root = match Checkpoint::open(&last.note, &self.signer.verifier()) {
            Ok(cp) if cp.size == last.tree_size as u64 && cp.origin == origin(self.signer.name(), tenant) => cp.root,
            Ok(_) => return Err(corrupt(format!("tenant {tenant}: checkpoint {} says another size or log than it is stored as", last.tree_size))),
            Err(lynx_tlog::CheckpointError::Note(NoteError::NotSigned(_))) => {
                tracing::info!(%tenant, tree_size = last.tree_size, "the last checkpoint was signed by another key (rotated?): rebuilding the tree from the rows");
                let rebuilt = tree_of(services.store.as_ref(), tenant, last.tree_size).await?;
                if hex::encode(rebuilt.root()) != last.root_hash {
                    return Err(corrupt(format!("tenant {tenant}: rows 1..{} no longer give the head of their checkpoint", last.tree_size)));
                }
                return Ok(rebuilt);
            }
            Err(e) => return Err(corrupt(format!("tenant {tenant}: stored checkpoint {} does not verify: {e}", last.tree_size))),
        };
        let heads = last.frontier.iter().map(|h| hex_hash(h)).collect::<Result<Vec<_>, _>>()?;
        let frontier = Frontier::from_heads(last.tree_size as u64, &heads).map_err(|e| corrupt(format!("tenant {tenant}: {e}")))?;
        if frontier.root() != signed_root {
            return Err(corrupt(format!("tenant {tenant}: the stored frontier of checkpoint {} does not give its signed head", last.tree_size)));
        }
        Ok(frontier)
    }
}

/// Writes a checkpoint's signed note as a new file (never replacing one); the path.
fn write_file(dir: &Path, record: &CheckpointRecord) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let path = dir.join(file_name(&record.tenant_id, record.tree_size));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut f) => {
            f.write_all(record.note.as_bytes())?;
            f.sync_all()?;
        }
        // The same checkpoint, written before (the same key signs the same body the same way).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && std::fs::read_to_string(&path).ok().as_deref() == Some(record.note.as_str()) => {}
        Err(e) => return Err(e),
    }
    Ok(path)
}

/// The leaves of a tenant's tree for rows `after < seq ≤ upto`, read from the rows; a gap is corruption.
async fn leaves(store: &dyn Store, tenant: &TenantId, mut after: i64, upto: i64) -> Result<Vec<Hash>, Refusal> {
    let mut out = Vec::with_capacity((upto - after).max(0) as usize);
    while after < upto {
        let page = store.audit_leaves(tenant, after, PAGE).await?;
        if page.is_empty() {
            return Err(corrupt(format!("tenant {tenant}: audit seq {} is missing", after + 1)));
        }
        for (seq, hash) in page.into_iter().take_while(|(seq, _)| *seq <= upto) {
            if seq != after + 1 {
                return Err(corrupt(format!("tenant {tenant}: audit seq {} is missing (found {seq})", after + 1)));
            }
            out.push(leaf_hash(&hex_hash(&hash)?));
            after = seq;
        }
    }
    Ok(out)
}

async fn tree_of(store: &dyn Store, tenant: &TenantId, size: i64) -> Result<Frontier, Refusal> {
    let mut tree = Frontier::default();
    for leaf in leaves(store, tenant, 0, size).await? {
        tree.push(leaf);
    }
    Ok(tree)
}

/// How far a tenant's audit is anchored: its rows, its newest checkpoint, its last passed verification.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorStatus {
    pub tenant_id: TenantId,
    pub rows: i64,
    pub checkpoint_size: Option<i64>,
    pub checkpoint_at: Option<chrono::DateTime<chrono::Utc>>,
    pub verified_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The checkpoint the last verification was checked against (`None`: the chain alone, or never).
    pub verified_checkpoint_size: Option<i64>,
}

/// Every tenant's anchoring (or one tenant's), for `lynx status` and the dashboard.
pub async fn anchor_status(store: &dyn Store, tenant: Option<&TenantId>) -> Result<Vec<AnchorStatus>, Refusal> {
    let checkpoints = store.latest_checkpoints().await?;
    let verifications = store.latest_verifications().await?;
    Ok(store
        .audit_heads()
        .await?
        .into_iter()
        .filter(|(t, _)| tenant.is_none_or(|only| only == t))
        .map(|(t, rows)| {
            let cp = checkpoints.iter().find(|c| c.tenant_id == t);
            let v = verifications.iter().find(|v| v.tenant_id == t);
            AnchorStatus {
                rows,
                checkpoint_size: cp.map(|c| c.tree_size),
                checkpoint_at: cp.map(|c| c.created_at),
                verified_at: v.map(|v| v.verified_at),
                verified_checkpoint_size: v.and_then(|v| v.checkpoint_size),
                tenant_id: t,
            }
        })
        .collect())
}

/// A checkpoint file as found in a directory.
#[derive(Debug, Clone)]
pub struct FoundCheckpoint {
    pub path: PathBuf,
    pub checkpoint: Checkpoint,
}

/// What verification against the checkpoint files found for one tenant.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorReport {
    pub tenant_id: String,
    pub rows: i64,
    /// Checkpoint files of the tenant that verified.
    pub checkpoints: usize,
    /// The newest of them: its size and file.
    pub newest: Option<(i64, PathBuf)>,
    /// What broke, each named precisely; empty when all holds.
    pub problems: Vec<String>,
}

impl AnchorReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The tenant a checkpoint's origin names, when it is a log of `key_name`.
fn tenant_of_origin<'o>(origin: &'o str, key_name: &str) -> Option<&'o str> {
    origin.strip_prefix(key_name)?.strip_prefix("/tenants/")
}

/// Checks every tenant's rows against the checkpoint files in `dir` signed by `verifier`.
pub async fn verify_against_files(store: &dyn Store, dir: &Path, verifier: &NoteVerifier) -> Result<Vec<AnchorReport>, Refusal> {
    let entries = std::fs::read_dir(dir).map_err(|e| Refusal::invalid_input("--checkpoints", format!("{} cannot be read: {e}", dir.display())))?;
    let mut by_tenant: BTreeMap<String, Vec<FoundCheckpoint>> = BTreeMap::new();
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "checkpoint")).collect();
    names.sort();
    for path in names {
        let shown = path.display().to_string();
        let named_tenant = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".checkpoint")).and_then(|n| n.rsplit_once('.')).map(|(t, _)| t.to_string());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.entry(named_tenant.unwrap_or_default()).or_default().push(format!("{shown} cannot be read: {e}"));
                continue;
            }
        };
        match Checkpoint::open(&text, verifier) {
            Ok(cp) => match tenant_of_origin(&cp.origin, verifier.name()) {
                Some(tenant) => {
                    if named_tenant.as_deref() != Some(tenant) {
                        problems.entry(tenant.to_string()).or_default().push(format!("{shown} holds a checkpoint of tenant {tenant}: the file was renamed"));
                    }
                    by_tenant.entry(tenant.to_string()).or_default().push(FoundCheckpoint { path, checkpoint: cp });
                }
                None => problems
                    .entry(named_tenant.unwrap_or_default())
                    .or_default()
                    .push(format!("{shown}: its origin {:?} is not a tenant log of {}", cp.origin, verifier.name())),
            },
            Err(e) => problems
                .entry(named_tenant.unwrap_or_default())
                .or_default()
                .push(format!("forged checkpoint {shown}: {e} (verifier key {})", verifier.to_text())),
        }
    }
    let heads: BTreeMap<String, i64> = store.audit_heads().await?.into_iter().map(|(t, h)| (t.to_string(), h)).collect();
    let mut tenants: Vec<String> = heads.keys().cloned().collect();
    tenants.extend(by_tenant.keys().cloned());
    tenants.extend(problems.keys().filter(|k| !k.is_empty()).cloned());
    tenants.sort();
    tenants.dedup();
    let mut reports = Vec::new();
    for tenant_name in tenants {
        let mut found = by_tenant.remove(&tenant_name).unwrap_or_default();
        found.sort_by_key(|f| f.checkpoint.size);
        let mut report = AnchorReport {
            tenant_id: tenant_name.clone(),
            rows: 0,
            checkpoints: found.len(),
            newest: found.last().map(|f| (f.checkpoint.size as i64, f.path.clone())),
            problems: problems.remove(&tenant_name).unwrap_or_default(),
        };
        let Ok(tenant) = TenantId::parse(tenant_name.as_str()) else {
            report.problems.push(format!("{tenant_name:?} is not a tenant id"));
            reports.push(report);
            continue;
        };
        check_tenant(store, &tenant, heads.get(&tenant_name).copied().unwrap_or(0), &found, &mut report).await?;
        reports.push(report);
    }
    if let Some(unattributed) = problems.remove("") {
        reports.push(AnchorReport { tenant_id: "?".into(), rows: 0, checkpoints: 0, newest: None, problems: unattributed });
    }
    Ok(reports)
}

/// Walks the tenant's rows once, comparing the tree at each checkpoint's size with its signed head.
async fn check_tenant(store: &dyn Store, tenant: &TenantId, head: i64, found: &[FoundCheckpoint], report: &mut AnchorReport) -> Result<(), Refusal> {
    for pair in found.windows(2) {
        if pair[0].checkpoint.size == pair[1].checkpoint.size && pair[0].checkpoint.root != pair[1].checkpoint.root {
            report.problems.push(format!(
                "{} and {} both sign {} rows with different heads: two histories were signed",
                pair[0].path.display(),
                pair[1].path.display(),
                pair[0].checkpoint.size
            ));
        }
    }
    let mut tree = Frontier::default();
    let mut pending = found.iter().peekable();
    let mut last_match: u64 = 0;
    let mut after = 0i64;
    'rows: while after < head {
        let page = store.audit_leaves(tenant, after, PAGE).await?;
        if page.is_empty() {
            let gap_end = head.min(after + i64::from(PAGE));
            report.problems.push(format!("seq {}..{gap_end} are missing (the tenant's rows go on to seq {head})", after + 1));
            break;
        }
        for (seq, hash) in page {
            if seq != after + 1 {
                report.problems.push(format!("seq {} is missing (the next row is seq {seq})", after + 1));
                break 'rows;
            }
            let Some(data) = leaf_data(&hash) else {
                report.problems.push(format!("seq {seq}: the stored hash is not 32 bytes of hex"));
                break 'rows;
            };
            tree.push(leaf_hash(&data));
            after = seq;
            // Each checkpoint is compared once the rows it covers are in.
            while let Some(f) = pending.next_if(|f| f.checkpoint.size == tree.size()) {
                if tree.root() != f.checkpoint.root {
                    report.problems.push(format!(
                        "rewritten: rows 1..{} do not give the head signed in {} (the newest checkpoint that matches covers 1..{last_match}: the change is among seq {}..{})",
                        f.checkpoint.size,
                        f.path.display(),
                        last_match + 1,
                        f.checkpoint.size
                    ));
                    break 'rows;
                }
                last_match = tree.size();
            }
        }
    }
    report.rows = after;
    if let Some(newest) = found.last() {
        let size = newest.checkpoint.size as i64;
        if after == 0 {
            report.problems.push(format!("vanished: {} signs {size} rows of tenant {tenant}; the database has none", newest.path.display()));
        } else if after < size && report.problems.is_empty() {
            report.problems.push(format!(
                "truncated: {} signs {size} rows; the database ends at seq {after} (seq {}..{size} are missing)",
                newest.path.display(),
                after + 1
            ));
        }
    }
    Ok(())
}

/// A self-contained proof that a run's audit rows are in a tenant's signed tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunProof {
    /// `lynx-audit-proof/1`.
    pub format: String,
    /// The signed checkpoint (a C2SP signed note of a tlog-checkpoint body).
    pub checkpoint: String,
    pub entries: Vec<ProofEntry>,
}

pub const PROOF_FORMAT: &str = "lynx-audit-proof/1";

/// One row: its content as the chain hash encodes it, its hashes, and its inclusion proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofEntry {
    /// The canonical encoding's fields, in order (see docs/AUDIT.md).
    pub row: ProofRow,
    /// The row's chain hash (hex): SHA-256 of the canonical encoding.
    pub hash: String,
    /// Its leaf index (`seq - 1`) and the RFC 6962 audit path, hex.
    pub leaf_index: u64,
    pub inclusion_proof: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofRow {
    pub event_id: uuid::Uuid,
    pub run_id: RunId,
    pub tenant_id: TenantId,
    pub tool_id: String,
    pub event_type: String,
    pub status: String,
    pub actor_id: String,
    pub input_data: Option<String>,
    pub output_data: Option<String>,
    pub error_message: Option<String>,
    /// RFC 3339 with microseconds, UTC (`Z`).
    pub created_at: String,
    pub duration_ms: Option<i64>,
    pub instance_id: Option<String>,
    pub seq: i64,
    pub prev_hash: String,
}

impl ProofRow {
    fn of(e: &AuditEvent) -> Self {
        let ev = &e.event;
        Self {
            event_id: ev.event_id,
            run_id: ev.run_id,
            tenant_id: ev.tenant_id.clone(),
            tool_id: ev.tool_id.clone(),
            event_type: ev.event_type.as_str().into(),
            status: ev.status.as_str().into(),
            actor_id: ev.actor_id.clone(),
            input_data: ev.input_data.clone(),
            output_data: ev.output_data.clone(),
            error_message: ev.error_message.clone(),
            created_at: ev.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            duration_ms: ev.duration_ms,
            instance_id: ev.instance_id.clone(),
            seq: e.seq,
            prev_hash: e.prev_hash.clone(),
        }
    }

    /// The chain hash of these fields: SHA-256 of the JSON array of them, in order (hex).
    pub fn chain_hash(&self) -> String {
        lynx_model::audit::canonical_hash(&(
            self.event_id,
            self.run_id,
            self.tenant_id.as_str(),
            &self.tool_id,
            &self.event_type,
            &self.status,
            &self.actor_id,
            &self.input_data,
            &self.output_data,
            &self.error_message,
            &self.created_at,
            self.duration_ms,
            &self.instance_id,
            self.seq,
            &self.prev_hash,
        ))
    }
}

/// The proof of a run's rows against the newest stored checkpoint of its tenant that covers them.
pub async fn prove_run(services: &Services, run_id: RunId) -> Result<RunProof, Refusal> {
    let store = services.store.as_ref();
    let mut rows: Vec<AuditEvent> = Vec::new();
    for tenant in store.audit_tenants().await? {
        rows.extend(store.audit_events(&tenant, &AuditFilter { run_id: Some(run_id), limit: 1000, ..Default::default() }).await?);
    }
    let Some(first) = rows.first() else {
        return Err(Refusal::new(ErrorCode::NotFound, format!("No audit rows of run {run_id}"), "Find run ids with `lynx audit tail` or GET /api/audit/events."));
    };
    let tenant = first.event.tenant_id.clone();
    rows.sort_by_key(|r| r.seq);
    let last_seq = rows.iter().map(|r| r.seq).max().unwrap_or(0);
    let checkpoint = store.latest_checkpoint(&tenant).await?.filter(|c| c.tree_size >= last_seq).ok_or_else(|| {
        Refusal::new(
            ErrorCode::NotFound,
            format!("Run {run_id} (tenant {tenant}, up to seq {last_seq}) is not yet covered by a signed checkpoint"),
            "Run `lynx audit checkpoint` (or wait for the next one, LYNX_AUDIT_CHECKPOINT_INTERVAL), then prove again.",
        )
    })?;
    let all = leaves(store, &tenant, 0, checkpoint.tree_size).await?;
    if hex::encode(merkle::root(&all)) != checkpoint.root_hash {
        return Err(corrupt(format!("tenant {tenant}: the rows no longer give the head of checkpoint {}", checkpoint.tree_size)));
    }
    let size = checkpoint.tree_size as u64;
    let entries = rows
        .iter()
        .map(|r| {
            let index = (r.seq - 1) as u64;
            let proof = merkle::inclusion_proof(all.as_slice(), index, size).map_err(|e| Refusal::internal(&format!("proving seq {}: {e}", r.seq)))?;
            Ok(ProofEntry { row: ProofRow::of(r), hash: r.hash.clone(), leaf_index: index, inclusion_proof: proof.iter().map(hex::encode).collect() })
        })
        .collect::<Result<Vec<_>, Refusal>>()?;
    Ok(RunProof { format: PROOF_FORMAT.into(), checkpoint: checkpoint.note, entries })
}

/// Checks a proof with the verifier key alone: the signature, each row's chain hash, and each
/// inclusion proof against the signed head. The checkpoint, once it holds.
pub fn verify_proof(proof: &RunProof, verifier: &NoteVerifier) -> Result<Checkpoint, String> {
    if proof.format != PROOF_FORMAT {
        return Err(format!("unknown proof format {:?} (this Lynx reads {PROOF_FORMAT})", proof.format));
    }
    let cp = Checkpoint::open(&proof.checkpoint, verifier).map_err(|e| format!("the checkpoint: {e}"))?;
    if proof.entries.is_empty() {
        return Err("the proof holds no rows".into());
    }
    for e in &proof.entries {
        let seq = e.row.seq;
        let tenant = tenant_of_origin(&cp.origin, verifier.name()).ok_or_else(|| format!("the checkpoint's origin {:?} is not a tenant log of {}", cp.origin, verifier.name()))?;
        if e.row.tenant_id.as_str() != tenant {
            return Err(format!("seq {seq}: the row is of tenant {} but the checkpoint of tenant {tenant}", e.row.tenant_id));
        }
        let hash = e.row.chain_hash();
        if hash != e.hash {
            return Err(format!("seq {seq}: the row's content does not give its hash (the row was altered)"));
        }
        if e.leaf_index != (seq - 1) as u64 {
            return Err(format!("seq {seq}: leaf index {} is not seq − 1", e.leaf_index));
        }
        let path = e.inclusion_proof.iter().map(|h| leaf_data(h).ok_or_else(|| format!("seq {seq}: a proof hash is not 32 bytes of hex"))).collect::<Result<Vec<_>, _>>()?;
        let leaf = leaf_hash(&leaf_data(&hash).ok_or("a chain hash is 32 bytes")?);
        merkle::verify_inclusion(e.leaf_index, cp.size, &leaf, &path, &cp.root).map_err(|err| format!("seq {seq}: not in the signed tree of {} rows: {err}", cp.size))?;
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use lynx_model::{
        audit::{EventType, NewAuditEvent, chain_hash},
        vocab::RunStatus,
    };

    use super::*;

    /// The proof's row gives the same chain hash as the stored event, whatever its content.
    #[test]
    fn a_proof_row_hashes_like_the_chain() {
        for (input, error, duration) in [(Some("{\"a\":\"ünï \\\" \\u0001\"}"), None, Some(3)), (None, Some("boom \n line"), None)] {
            let event = NewAuditEvent {
                event_id: uuid::Uuid::new_v4(),
                run_id: RunId::new(),
                tenant_id: TenantId::parse("tenant-123").unwrap(),
                tool_id: "x.domain.y.read".into(),
                event_type: EventType::ToolCall,
                status: RunStatus::Succeeded,
                actor_id: "agent-001".into(),
                input_data: input.map(str::to_string),
                output_data: None,
                error_message: error.map(str::to_string),
                created_at: chrono::Utc::now(),
                duration_ms: duration,
                instance_id: Some("i".into()),
            };
            let hash = chain_hash(&event, 7, "ab");
            let stored = AuditEvent { event, seq: 7, prev_hash: "ab".into(), hash: hash.clone() };
            assert_eq!(ProofRow::of(&stored).chain_hash(), hash);
        }
    }

    #[test]
    fn origins_name_the_tenant_log_of_the_key() {
        let t = TenantId::parse("tenant-123").unwrap();
        assert_eq!(origin("lynx.example.com", &t), "lynx.example.com/tenants/tenant-123");
        assert_eq!(tenant_of_origin(&origin("lynx.example.com", &t), "lynx.example.com"), Some("tenant-123"));
        assert_eq!(tenant_of_origin("other.example/tenants/tenant-123", "lynx.example.com"), None);
        assert_eq!(file_name(&t, 42), "tenant-123.000000000042.checkpoint");
    }
}
