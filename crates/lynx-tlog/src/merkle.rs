//! RFC 6962 (RFC 9162 §2.1) Merkle trees: leaf and node hashing, tree heads, inclusion and
//! consistency proofs and their verification, and the compact range (`Frontier`) that lets a tree
//! grow — and prove that it only grew — without keeping its old leaves.
//!
//! Proof *generation* follows RFC 6962 §2.1.1–2.1.2 (PATH and PROOF) over a `Subtrees` source;
//! *verification* follows RFC 9162 §2.1.3.2 and §2.1.4.2. Checked against the known answers of the
//! transparency-dev/merkle reference (see the tests).

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, a node hash or a tree head.
pub type Hash = [u8; 32];

/// `MTH({d})` = SHA-256(0x00 ‖ d).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The tree head of no leaves: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where proofs find the hash of a subtree: the leaves `[start, end)`.
pub trait Subtrees {
    fn subtree(&self, start: u64, end: u64) -> Result<Hash, ProofError>;
}

/// All the leaf hashes of a tree, in order.
impl Subtrees for [Hash] {
    fn subtree(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        let leaves = self.get(start as usize..end as usize).ok_or(ProofError::Malformed("a subtree outside the tree"))?;
        Ok(root(leaves))
    }
}

/// The tree head of these leaf hashes (`MTH(D[n])`), computed bottom-up without recursion.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::default();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the proof does not lead to the tree head")]
    Mismatch,
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
}

/// The audit path of leaf `index` in a tree of `size` leaves (RFC 6962 PATH).
pub fn inclusion_proof(tree: &(impl Subtrees + ?Sized), index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::Malformed("the leaf is not in the tree"));
    }
    let mut proof = Vec::new();
    path(tree, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path(tree: &(impl Subtrees + ?Sized), m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), ProofError> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(tree, m, start, start + k, out)?;
        out.push(tree.subtree(start + k, end)?);
    } else {
        path(tree, m - k, start + k, end, out)?;
        out.push(tree.subtree(start, start + k)?);
    }
    Ok(())
}

/// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` (RFC 6962 PROOF).
pub fn consistency_proof(tree: &(impl Subtrees + ?Sized), old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::Malformed("the old size must be between 1 and the new size"));
    }
    let mut proof = Vec::new();
    subproof(tree, old_size, 0, new_size, true, &mut proof)?;
    Ok(proof)
}

fn subproof(tree: &(impl Subtrees + ?Sized), m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) -> Result<(), ProofError> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(tree.subtree(start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(tree, m, start, start + k, whole, out)?;
        out.push(tree.subtree(start + k, end)?);
    } else {
        subproof(tree, m - k, start + k, end, false, out)?;
        out.push(tree.subtree(start, start + k)?);
    }
    Ok(())
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose head is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Malformed("the leaf index is not below the tree size"));
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Malformed("the proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Malformed("the proof is too short"));
    }
    if r == *root { Ok(()) } else { Err(ProofError::Mismatch) }
}

/// Checks that the tree of `old_size` leaves with head `old_root` is a prefix of the tree of
/// `new_size` leaves with head `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::Malformed("the old tree is larger than the new one"));
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root { Ok(()) } else { Err(ProofError::Mismatch) };
    }
    if old_size == 0 {
        // Every tree extends the empty one; nothing to prove.
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::Malformed("a proof from the empty tree must be empty")) };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::Malformed("the proof is empty"));
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::Malformed("the proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Malformed("the proof is too short"));
    }
    if fr == *old_root && sr == *new_root { Ok(()) } else { Err(ProofError::Mismatch) }
}

/// A tree kept as its compact range: the heads of the perfect subtrees its size decomposes into,
/// largest (leftmost) first — at most 64 hashes, whatever the size. Pushing a leaf is amortised one
/// node hash; the head is the fold of the range from the right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, head) pairs; a subtree of height h holds 2^h leaves.
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.nodes.last() {
            if height != node.0 {
                break;
            }
            self.nodes.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else { return empty_root() };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }

    /// The heads, leftmost first (what is stored to grow the tree later).
    pub fn heads(&self) -> Vec<Hash> {
        self.nodes.iter().map(|(_, h)| *h).collect()
    }

    /// The frontier of a tree of `size` leaves from its heads (as `heads` gave them).
    pub fn from_heads(size: u64, heads: &[Hash]) -> Result<Self, ProofError> {
        let heights: Vec<u32> = (0..64u32).rev().filter(|b| size >> b & 1 == 1).collect();
        if heights.len() != heads.len() {
            return Err(ProofError::Malformed("the stored frontier does not fit the tree size"));
        }
        Ok(Self { size, nodes: heights.into_iter().zip(heads.iter().copied()).collect() })
    }

    /// Where each head sits: `(start, end, head)` in leaf positions.
    fn ranges(&self) -> Vec<(u64, u64, Hash)> {
        let mut start = 0;
        self.nodes
            .iter()
            .map(|&(height, head)| {
                let end = start + (1u64 << height);
                let range = (start, end, head);
                start = end;
                range
            })
            .collect()
    }
}

/// A grown tree as a proof sees it: the old tree's frontier and the leaves added since. Exactly the
/// subtrees a consistency proof from the old size needs are there: heads of the old frontier, and
/// subtrees of the new leaves.
pub struct Grown<'a> {
    old: Vec<(u64, u64, Hash)>,
    old_size: u64,
    added: &'a [Hash],
}

impl<'a> Grown<'a> {
    pub fn new(old: &Frontier, added: &'a [Hash]) -> Self {
        Self { old: old.ranges(), old_size: old.size(), added }
    }
}

impl Subtrees for Grown<'_> {
    fn subtree(&self, start: u64, end: u64) -> Result<Hash, ProofError> {
        if start >= self.old_size {
            return self.added.subtree(start - self.old_size, end - self.old_size);
        }
        self.old
            .iter()
            .find(|(s, e, _)| *s == start && *e == end)
            .map(|(_, _, h)| *h)
            .ok_or(ProofError::Malformed("the proof needs a subtree of the old tree that its frontier does not hold"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The known answers of the transparency-dev/merkle reference tests (testonly/reference_test.go):
    // these eight leaves, the tree heads of their prefixes, and a few proofs.
    const LEAVES: [&str; 8] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn leaves() -> Vec<Hash> {
        LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect()
    }

    fn hashes(joined: &str) -> Vec<Hash> {
        let bytes = hex::decode(joined).unwrap();
        bytes.chunks(32).map(|c| c.try_into().unwrap()).collect()
    }

    #[test]
    fn tree_heads_match_the_reference() {
        let l = leaves();
        assert_eq!(hex::encode(root(&[])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        for (n, expected) in ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(root(&l[..=n])), *expected, "size {}", n + 1);
        }
    }

    #[test]
    fn inclusion_proofs_match_the_reference_and_verify() {
        let l = leaves();
        let cases = [
            (1, 0, ""),
            (2, 0, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            (2, 1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            (3, 2, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
            (
                5,
                1,
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031ebc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ),
            (
                8,
                0,
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc75f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ),
            (
                8,
                5,
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6bca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ),
        ];
        for (size, index, expected) in cases {
            let proof = inclusion_proof(&l[..size as usize], index, size).unwrap();
            assert_eq!(proof, hashes(expected), "size {size} index {index}");
            let head = root(&l[..size as usize]);
            verify_inclusion(index, size, &l[index as usize], &proof, &head).unwrap();
            // A different leaf, position or head does not verify.
            assert!(verify_inclusion(index, size, &leaf_hash(b"x"), &proof, &head).is_err());
            if size > 1 {
                assert!(verify_inclusion((index + 1) % size, size, &l[index as usize], &proof, &head).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_and_verify() {
        let l = leaves();
        let cases = [
            (1, 1, ""),
            (
                1,
                8,
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc75f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ),
            (2, 5, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031ebc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            (
                6,
                8,
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6aca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ),
        ];
        for (m, n, expected) in cases {
            let proof = consistency_proof(&l[..n as usize], m, n).unwrap();
            assert_eq!(proof, hashes(expected), "{m} -> {n}");
            verify_consistency(m, n, &root(&l[..m as usize]), &root(&l[..n as usize]), &proof).unwrap();
        }
    }

    /// Every pair of sizes up to 70: the proof from a frontier and the added leaves equals the proof
    /// from all leaves and verifies; a changed old leaf makes it fail.
    #[test]
    fn growing_from_a_frontier_proves_consistency_for_every_size() {
        let all: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for m in 1..all.len() as u64 {
            let mut old = Frontier::default();
            for leaf in &all[..m as usize] {
                old.push(*leaf);
            }
            assert_eq!(old.root(), root(&all[..m as usize]));
            let restored = Frontier::from_heads(m, &old.heads()).unwrap();
            assert_eq!(restored, old, "heads restore the frontier");
            for n in m..=all.len() as u64 {
                let added = &all[m as usize..n as usize];
                let from_frontier = consistency_proof(&Grown::new(&old, added), m, n).unwrap();
                assert_eq!(from_frontier, consistency_proof(&all[..n as usize], m, n).unwrap(), "{m} -> {n}");
                let new_root = root(&all[..n as usize]);
                verify_consistency(m, n, &old.root(), &new_root, &from_frontier).unwrap();
                if n > m {
                    let mut forged = all[..n as usize].to_vec();
                    forged[(m - 1) as usize] = leaf_hash(b"rewritten");
                    assert_eq!(verify_consistency(m, n, &old.root(), &root(&forged), &from_frontier), Err(ProofError::Mismatch), "{m} -> {n}");
                }
            }
        }
        assert!(Frontier::from_heads(5, &[empty_root()]).is_err(), "5 = 4 + 1 needs two heads");
    }

    #[test]
    fn every_inclusion_proof_of_every_size_verifies() {
        let all: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for n in 1..=all.len() as u64 {
            let head = root(&all[..n as usize]);
            for i in 0..n {
                let proof = inclusion_proof(&all[..n as usize], i, n).unwrap();
                verify_inclusion(i, n, &all[i as usize], &proof, &head).unwrap();
            }
        }
    }
}
