//! From parsed lists to a file image: de-duplication, item order, sorted
//! digest arrays, interned strings, the PDQ index.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::formats::Entries;
use crate::layout::{self, AlignedBytes, ItemRec, Section, NO_QUALITY, NO_STRING};
use crate::spec::ListKind;
use crate::{pdqidx, Algo, LoadError};

/// A list of a built set, as stored in the index and shown with every hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListMeta {
    /// The list's name.
    pub name: String,
    /// `match` or `ignore`.
    pub kind: ListKind,
    /// PDQ Hamming radius of a near match.
    pub pdq_radius: u32,
    /// Images whose PDQ quality is lower are not near-matched.
    pub min_quality: u8,
    /// Trust in the list, 0..=1.
    pub weight: f64,
    /// File name of the source (no directories, so the version does not
    /// depend on where the file was).
    pub source: String,
    /// First 16 hex digits of the BLAKE3 of the (decompressed) source.
    pub source_version: String,
    /// Data rows in the source.
    pub rows: u64,
    /// Items kept (rows adding at least one new digest).
    pub items: u64,
    /// Digests already listed by an earlier row of the same list.
    pub duplicates: u64,
    /// Distinct digests per algorithm.
    pub counts: BTreeMap<Algo, u64>,
}

/// The set-level metadata stored in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SetMeta {
    pub(crate) name: String,
    pub(crate) lists: Vec<ListMeta>,
}

/// One list ready to be built in: its metadata (counts are filled in here)
/// and its entries in file order.
pub(crate) struct ListInput {
    pub(crate) meta: ListMeta,
    pub(crate) entries: Entries,
}

/// A digest occurrence to sort: the digest, then list and entry (global
/// entry number) so that the first occurrence within a list sorts first.
struct Key<const N: usize> {
    digest: [u8; N],
    list: u16,
    entry: u32,
}

/// Sorts the occurrences of one algorithm, drops repeats within a list
/// (counting them) and returns the survivors, sorted by digest.
fn dedup<const N: usize>(mut keys: Vec<Key<N>>, dup_counts: &mut [u64], keep: &mut [u8], bit: u8) -> Vec<Key<N>> {
    keys.sort_unstable_by_key(|k| (k.digest, k.list, k.entry));
    let mut out: Vec<Key<N>> = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(last) = out.last() {
            if last.digest == k.digest && last.list == k.list {
                dup_counts[usize::from(k.list)] += 1;
                continue;
            }
        }
        keep[k.entry as usize] |= bit;
        out.push(k);
    }
    out
}

/// Gathers one algorithm's occurrences over all lists, numbering entries globally.
fn keys<const N: usize>(lists: &[ListInput], column: impl Fn(&Entries) -> &Vec<([u8; N], u32)>) -> Vec<Key<N>> {
    let mut out = Vec::with_capacity(lists.iter().map(|l| column(&l.entries).len()).sum());
    let mut base = 0u32;
    for (li, l) in lists.iter().enumerate() {
        out.extend(column(&l.entries).iter().map(|&(digest, e)| Key { digest, list: li as u16, entry: base + e }));
        base += l.entries.len() as u32;
    }
    out
}

/// Builds the file image of a set.
pub(crate) fn build(name: &str, lists: Vec<ListInput>) -> Result<(AlignedBytes, SetMeta), LoadError> {
    if lists.len() > usize::from(u16::MAX) {
        return Err(LoadError::TooManyItems);
    }
    let total: usize = lists.iter().map(|l| l.entries.len()).sum();
    if total >= u32::MAX as usize {
        return Err(LoadError::TooManyItems);
    }
    // Which digests of each entry survive de-duplication (one bit per algorithm).
    let mut keep = vec![0u8; total];
    let mut dups = vec![0u64; lists.len()];
    let md5 = dedup(keys(&lists, |e| &e.md5), &mut dups, &mut keep, 1);
    let sha1 = dedup(keys(&lists, |e| &e.sha1), &mut dups, &mut keep, 2);
    let sha256 = dedup(keys(&lists, |e| &e.sha256), &mut dups, &mut keep, 4);
    let blake3 = dedup(keys(&lists, |e| &e.blake3), &mut dups, &mut keep, 8);
    let pdq = dedup(keys(&lists, |e| &e.pdq), &mut dups, &mut keep, 16);

    // Global entry number → (list, entry within list).
    let mut starts = Vec::with_capacity(lists.len());
    let mut base = 0u32;
    for l in &lists {
        starts.push(base);
        base += l.entries.len() as u32;
    }
    let locate = |entry: u32| -> (usize, usize) {
        let li = starts.partition_point(|&s| s <= entry) - 1;
        (li, (entry - starts[li]) as usize)
    };
    // Item order: entries that keep a PDQ hash first (hash i is item i),
    // then the others; both in list and file order. Entries that kept
    // nothing are dropped.
    let mut pdq_by_entry: Vec<(u32, [u8; 32])> = pdq.iter().map(|k| (k.entry, k.digest)).collect();
    pdq_by_entry.sort_unstable_by_key(|&(e, _)| e);
    let mut order: Vec<u32> = pdq_by_entry.iter().map(|&(e, _)| e).collect();
    let n_pdq = order.len();
    order.extend((0..total as u32).filter(|&i| keep[i as usize] != 0 && keep[i as usize] & 16 == 0));
    let mut item_of_entry = vec![u32::MAX; total];
    for (item, &entry) in order.iter().enumerate() {
        item_of_entry[entry as usize] = item as u32;
    }

    let mut strings = Vec::new();
    let mut interned: HashMap<&str, u32> = HashMap::new();
    let mut items: Vec<ItemRec> = Vec::with_capacity(order.len());
    for (position, &entry) in order.iter().enumerate() {
        let (li, local) = locate(entry);
        let e = &lists[li].entries;
        let meta = e.meta[local];
        let mut intern = |s: Option<u32>| -> Result<u32, LoadError> {
            let Some(s) = s.map(|i| e.strings.get(i)) else { return Ok(NO_STRING) };
            if let Some(&at) = interned.get(s) {
                return Ok(at);
            }
            let at = u32::try_from(strings.len()).ok().filter(|&a| a != NO_STRING).ok_or(LoadError::TooManyItems)?;
            let len = u32::try_from(s.len()).map_err(|_| LoadError::TooManyItems)?;
            strings.extend_from_slice(&len.to_le_bytes());
            strings.extend_from_slice(s.as_bytes());
            interned.insert(s, at);
            Ok(at)
        };
        items.push(ItemRec {
            list: li as u16,
            quality: if position < n_pdq { meta.quality.unwrap_or(NO_QUALITY) } else { NO_QUALITY },
            reserved: 0,
            line: meta.line,
            id: intern(meta.id)?,
            label: intern(meta.label)?,
        });
    }
    let pdq_hashes: Vec<[u8; 32]> = pdq_by_entry.iter().map(|&(_, d)| d).collect();
    let mut metas: Vec<ListMeta> = lists.iter().map(|l| l.meta.clone()).collect();
    for (i, m) in metas.iter_mut().enumerate() {
        m.duplicates = dups[i];
        m.items = items.iter().filter(|it| usize::from(it.list) == i).count() as u64;
    }
    let mut count = |algo: Algo, lists: &mut dyn Iterator<Item = u16>| {
        for l in lists {
            *metas[usize::from(l)].counts.entry(algo).or_insert(0) += 1;
        }
    };
    count(Algo::Md5, &mut md5.iter().map(|k| k.list));
    count(Algo::Sha1, &mut sha1.iter().map(|k| k.list));
    count(Algo::Sha256, &mut sha256.iter().map(|k| k.list));
    count(Algo::Blake3, &mut blake3.iter().map(|k| k.list));
    count(Algo::Pdq, &mut pdq.iter().map(|k| k.list));

    fn split<const N: usize>(keys: &[Key<N>], item_of_entry: &[u32]) -> (Vec<u8>, Vec<u8>) {
        let digests: Vec<u8> = keys.iter().flat_map(|k| k.digest).collect();
        let items: Vec<u32> = keys.iter().map(|k| item_of_entry[k.entry as usize]).collect();
        (digests, bytemuck::cast_slice(&items).to_vec())
    }
    let (md5_keys, md5_items) = split(&md5, &item_of_entry);
    let (sha1_keys, sha1_items) = split(&sha1, &item_of_entry);
    let (sha256_keys, sha256_items) = split(&sha256, &item_of_entry);
    let (blake3_keys, blake3_items) = split(&blake3, &item_of_entry);
    let (slices, offsets, ids) =
        pdqidx::build(&pdq_hashes).map_err(|detail| LoadError::Spec { context: "PDQ index".into(), detail })?;

    let meta = SetMeta { name: name.to_string(), lists: metas };
    let meta_json =
        serde_json::to_vec(&meta).map_err(|e| LoadError::Spec { context: "metadata".into(), detail: e.to_string() })?;
    let image = layout::write(&[
        (Section::Meta, meta_json),
        (Section::Items, bytemuck::cast_slice(&items).to_vec()),
        (Section::Strings, strings),
        (Section::Md5Keys, md5_keys),
        (Section::Sha1Keys, sha1_keys),
        (Section::Sha256Keys, sha256_keys),
        (Section::Blake3Keys, blake3_keys),
        (Section::Md5Items, md5_items),
        (Section::Sha1Items, sha1_items),
        (Section::Sha256Items, sha256_items),
        (Section::Blake3Items, blake3_items),
        (Section::PdqHashes, pdq_hashes.iter().flatten().copied().collect()),
        (Section::PdqIndexOffsets, bytemuck::cast_slice(&offsets).to_vec()),
        (Section::PdqIndexIds, bytemuck::cast_slice(&ids).to_vec()),
        (Section::PdqIndexSlices, slices.to_le_bytes().to_vec()),
    ]);
    Ok((image, meta))
}
