// An independent check of a Lynx audit proof (`lynx audit prove`), written from docs/AUDIT.md with
// Node's own SHA-256, Ed25519 and JSON — no Lynx code. It verifies the C2SP signed note of the
// checkpoint against the verifier key, parses the tlog-checkpoint body, recomputes each row's chain
// hash from its fields, and checks each RFC 6962 inclusion proof against the signed tree head.
//
// Run by crates/lynx/tests/e2e/audit_anchor.rs with PROOF (the proof file), VKEY (the verifier key)
// and EXPECT (`valid` or `invalid`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash, createPublicKey, verify } from 'node:crypto';

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `name+keyid+base64(0x01 || pubkey)` → the name, the 4-byte key ID and a KeyObject. */
function parseVerifierKey(text) {
  const [name, id, ...rest] = text.trim().split('+');
  const typed = Buffer.from(rest.join('+'), 'base64');
  assert.equal(typed[0], 0x01, 'an Ed25519 key');
  const raw = typed.subarray(1);
  assert.equal(raw.length, 32);
  const keyId = sha256(Buffer.from(name), Buffer.from([0x0a, 0x01]), raw).subarray(0, 4);
  assert.equal(keyId.toString('hex'), id, 'the key ID is the hash of name, type and key');
  // SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte prefix, then the 32 key bytes.
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]);
  return { name, keyId, key: createPublicKey({ key: spki, format: 'der', type: 'spki' }) };
}

/** The text of a signed note, once the verifier's signature on it checks. */
function openNote(note, vk) {
  const split = note.lastIndexOf('\n\n');
  assert.ok(split > 0, 'a blank line before the signatures');
  const text = note.slice(0, split + 1);
  for (const line of note.slice(split + 2).split('\n').filter((l) => l.length > 0)) {
    assert.ok(line.startsWith('\u2014 '), 'a signature line starts with an em dash');
    const [name, blob] = line.slice(2).split(' ');
    const sig = Buffer.from(blob, 'base64');
    if (name !== vk.name || !sig.subarray(0, 4).equals(vk.keyId)) continue;
    if (!verify(null, Buffer.from(text, 'utf8'), vk.key, sig.subarray(4))) throw new Error('the checkpoint signature does not verify');
    return text;
  }
  throw new Error('the checkpoint is not signed by the verifier key');
}

const leafHash = (data) => sha256(Buffer.from([0x00]), data);
const nodeHash = (l, r) => sha256(Buffer.from([0x01]), l, r);

/** RFC 9162 §2.1.3.2. */
function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** The chain hash: SHA-256 of the compact JSON array of the row's fields, in the documented order. */
function chainHash(row) {
  const fields = [
    row.event_id, row.run_id, row.tenant_id, row.tool_id, row.event_type, row.status, row.actor_id,
    row.input_data, row.output_data, row.error_message, row.created_at, row.duration_ms, row.instance_id,
    row.seq, row.prev_hash,
  ];
  return sha256(Buffer.from(JSON.stringify(fields), 'utf8')).toString('hex');
}

function check(proof, vkeyText) {
  assert.equal(proof.format, 'lynx-audit-proof/1');
  const vk = parseVerifierKey(vkeyText);
  const [origin, sizeLine, rootLine] = openNote(proof.checkpoint, vk).split('\n');
  const size = Number(sizeLine);
  const root = Buffer.from(rootLine, 'base64');
  assert.ok(Number.isSafeInteger(size) && size > 0 && root.length === 32, 'a tlog-checkpoint body');
  assert.ok(origin.startsWith(`${vk.name}/tenants/`), 'a tenant log of this key');
  for (const e of proof.entries) {
    if (chainHash(e.row) !== e.hash) throw new Error(`seq ${e.row.seq}: the row does not give its hash`);
    assert.equal(e.leaf_index, e.row.seq - 1);
    const path = e.inclusion_proof.map((h) => Buffer.from(h, 'hex'));
    if (!verifyInclusion(e.leaf_index, size, leafHash(Buffer.from(e.hash, 'hex')), path, root)) {
      throw new Error(`seq ${e.row.seq}: not in the signed tree`);
    }
  }
}

test('the proof checks out independently of Lynx (or, for a tampered one, does not)', () => {
  const proof = JSON.parse(readFileSync(process.env.PROOF, 'utf8'));
  if (process.env.EXPECT === 'valid') {
    check(proof, process.env.VKEY);
  } else {
    assert.throws(() => check(proof, process.env.VKEY), /does not give its hash/);
  }
});
