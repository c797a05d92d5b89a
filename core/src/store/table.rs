//! The run tables' encoding in shared data: compact binary, read without decoding what a merge
//! does not touch.
//!
//! A merge or an idle scan runs on a worker's event loop, between requests. With JSON every merge
//! decoded and re-encoded the shard's whole table (about 7 KB for 32 runs) and the idle scan decoded
//! all 64 shards, so a client announcing many distinct runs made every one of its requests cost a
//! full table round trip, and slowed other traffic on the same worker (report/reliability.md).
//! Here each entry starts with the fields the table logic needs (id, `emitted`, `last_ns`) and the
//! length of the rest, so a merge scans the entries, decodes only the run it merges (and any run it
//! closes) and copies every other entry's bytes as they are.
//!
//! ```text
//! table := MAGIC entry*
//! entry := varint(id_len) id varint(body_len) body
//! body  := flags:u8 (bit 0: emitted) last_ns:u64le varint(threads) varint(calls) varint(first_ns)
//!          varint(mismatched) varint(overflow no_healthy connect_failure fault upstream refused)
//!          varint(n_codes) (varint(code) varint(count))*
//! ```
//! A table written by an older filter (JSON, starting with `{`) is still read; it is rewritten in
//! this encoding by the next merge.

use crate::counters::{ReasonCounts, RunCounters};
use std::collections::BTreeMap;

/// First byte of a binary table (never the first byte of JSON).
pub const MAGIC: u8 = 0xB1;

/// Runs of one shard, by id (the decoded form, for tests and tools).
pub type RunTable = BTreeMap<String, RunCounters>;

/// One entry as it lies in the table: what the table logic needs, and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub id: &'a [u8],
    pub emitted: bool,
    pub last_ns: u64,
    /// The whole entry (id and body), to copy unchanged.
    pub raw: &'a [u8],
    body: &'a [u8],
}

impl Entry<'_> {
    /// The entry's counters, decoded.
    pub fn counters(&self) -> Result<RunCounters, String> {
        let id = String::from_utf8_lossy(self.id);
        decode_body(self.body).map_err(|e| format!("run {id:?}: {e}"))
    }

    pub fn id_str(&self) -> String {
        String::from_utf8_lossy(self.id).into_owned()
    }
}

/// A table's entries, read lazily; a JSON table from an older filter is decoded whole.
pub enum Table<'a> {
    Binary(Vec<Entry<'a>>),
    Legacy(RunTable),
}

/// Reads a table's entry headers (empty bytes: no entries). Errors name the byte offset.
pub fn scan(bytes: &[u8]) -> Result<Table<'_>, String> {
    match bytes.first() {
        None => Ok(Table::Binary(Vec::new())),
        Some(&MAGIC) => scan_binary(bytes).map(Table::Binary),
        Some(b'{') => serde_json::from_slice(bytes).map(Table::Legacy).map_err(|e| format!("legacy JSON table: {e}")),
        Some(b) => Err(format!("unknown table format (first byte 0x{b:02x})")),
    }
}

fn scan_binary(bytes: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let mut r = Reader { buf: bytes, pos: 1 };
    let mut out = Vec::new();
    while r.pos < bytes.len() {
        let start = r.pos;
        let id_len = r.len("id length")?;
        let id = r.take(id_len, "id")?;
        let body_len = r.len("body length")?;
        let body = r.take(body_len, "body")?;
        if body.len() < 9 {
            return Err(format!("entry at byte {start}: body of {} bytes is too short", body.len()));
        }
        let flags = body[0];
        if flags > 1 {
            return Err(format!("entry at byte {start}: unknown flags 0x{flags:02x}"));
        }
        let mut last = [0u8; 8];
        last.copy_from_slice(&body[1..9]);
        out.push(Entry { id, emitted: flags == 1, last_ns: u64::from_le_bytes(last), raw: &bytes[start..r.pos], body });
    }
    Ok(out)
}

/// Decodes a whole table (every body checked).
pub fn decode(bytes: &[u8]) -> Result<RunTable, String> {
    match scan(bytes)? {
        Table::Legacy(t) => Ok(t),
        Table::Binary(entries) => {
            let mut t = RunTable::new();
            for e in entries {
                if t.insert(e.id_str(), e.counters()?).is_some() {
                    return Err(format!("run {:?} appears twice", e.id_str()));
                }
            }
            Ok(t)
        }
    }
}

/// Encodes a whole table (empty table: empty bytes).
pub fn encode(t: &RunTable) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, c) in t {
        push_entry(&mut out, id.as_bytes(), c);
    }
    out
}

/// Appends one entry; starts the table (the magic byte) if `out` is empty.
pub fn push_entry(out: &mut Vec<u8>, id: &[u8], c: &RunCounters) {
    if out.is_empty() {
        out.push(MAGIC);
    }
    let mut body = Vec::with_capacity(48);
    body.push(u8::from(c.emitted));
    body.extend_from_slice(&c.last_ns.to_le_bytes());
    let r = &c.reasons;
    for v in [
        u64::from(c.threads),
        u64::from(c.calls),
        c.first_ns,
        c.mismatched,
        r.overflow,
        r.no_healthy,
        r.connect_failure,
        r.fault,
        r.upstream,
        r.refused,
        c.codes.len() as u64,
    ] {
        varint(&mut body, v);
    }
    for (code, n) in &c.codes {
        varint(&mut body, u64::from(*code));
        varint(&mut body, *n);
    }
    varint(out, id.len() as u64);
    out.extend_from_slice(id);
    varint(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// Bytes one entry of `id` with counters `c` takes in a table (the table adds one magic byte).
/// Bounds on the tables' size are derived from it.
pub fn entry_len(id: &[u8], c: &RunCounters) -> usize {
    let mut out = vec![MAGIC];
    push_entry(&mut out, id, c);
    out.len() - 1
}

/// Appends an entry's bytes unchanged (starting the table if needed).
pub fn push_raw(out: &mut Vec<u8>, raw: &[u8]) {
    if out.is_empty() {
        out.push(MAGIC);
    }
    out.extend_from_slice(raw);
}

/// A table holding nothing is stored as empty bytes.
pub fn finish(out: Vec<u8>) -> Vec<u8> {
    if out.len() <= 1 {
        Vec::new()
    } else {
        out
    }
}

fn decode_body(body: &[u8]) -> Result<RunCounters, String> {
    let mut r = Reader { buf: body, pos: 9 };
    let emitted = body.first() == Some(&1);
    let mut last = [0u8; 8];
    last.copy_from_slice(body.get(1..9).ok_or("body too short")?);
    let threads = r.u32("threads")?;
    let calls = r.u32("calls")?;
    let first_ns = r.varint("first_ns")?;
    let mismatched = r.varint("mismatched")?;
    let reasons = ReasonCounts {
        overflow: r.varint("overflow")?,
        no_healthy: r.varint("no_healthy")?,
        connect_failure: r.varint("connect_failure")?,
        fault: r.varint("fault")?,
        upstream: r.varint("upstream")?,
        refused: r.varint("refused")?,
    };
    let n = r.len("code count")?;
    let mut codes = BTreeMap::new();
    for _ in 0..n {
        let code = u16::try_from(r.varint("code")?).map_err(|_| "code out of range".to_string())?;
        let count = r.varint("code count")?;
        if codes.insert(code, count).is_some() {
            return Err(format!("code {code} appears twice"));
        }
    }
    if r.pos != body.len() {
        return Err(format!("{} bytes left after the codes", body.len() - r.pos));
    }
    Ok(RunCounters { threads, calls, codes, reasons, first_ns, last_ns: u64::from_le_bytes(last), mismatched, emitted })
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| format!("{what}: truncated at byte {}", self.pos))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(format!("{what}: varint overflows at byte {}", self.pos - 1));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what}: varint too long at byte {}", self.pos))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        u32::try_from(self.varint(what)?).map_err(|_| format!("{what}: out of range"))
    }

    /// A length, bounded by the bytes that remain.
    fn len(&mut self, what: &str) -> Result<usize, String> {
        let v = self.varint(what)?;
        let left = self.buf.len() - self.pos;
        usize::try_from(v)
            .ok()
            .filter(|n| *n <= left)
            .ok_or_else(|| format!("{what} {v} exceeds the {left} bytes left"))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let s =
            self.buf.get(self.pos..self.pos + n).ok_or_else(|| format!("{what}: truncated at byte {}", self.pos))?;
        self.pos += n;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::RunAnnounce;
    use proptest::prelude::*;

    fn counters(seed: u64) -> RunCounters {
        let mut c = RunCounters::default();
        let a = RunAnnounce { threads: 1 + seed as u32 % 7, calls: 1_000 };
        for i in 0..(seed % 5 + 1) {
            c.record(
                a,
                if i % 2 == 0 { 200 } else { 503 },
                0x80 * (i % 2),
                1_700_000_000_000_000_000 + i,
                u64::MAX - seed,
            );
        }
        c.emitted = seed.is_multiple_of(3);
        c
    }

    #[test]
    fn round_trips_and_reads_headers_without_bodies() {
        let t: RunTable = (0..40).map(|i| (format!("run-{i}"), counters(i))).collect();
        let bytes = encode(&t);
        assert_eq!(decode(&bytes).unwrap(), t);
        let Table::Binary(entries) = scan(&bytes).unwrap() else { panic!("binary") };
        assert_eq!(entries.len(), 40);
        for e in &entries {
            let c = &t[&e.id_str()];
            assert_eq!((e.emitted, e.last_ns), (c.emitted, c.last_ns));
        }
        // Copying raw entries rebuilds the same bytes.
        let mut copy = Vec::new();
        entries.iter().for_each(|e| push_raw(&mut copy, e.raw));
        assert_eq!(copy, bytes);
        // Much smaller than JSON.
        let json = serde_json::to_vec(&t).unwrap();
        assert!(bytes.len() * 3 < json.len(), "{} vs {} bytes", bytes.len(), json.len());
    }

    #[test]
    fn legacy_json_tables_are_read() {
        let t: RunTable = (0..3).map(|i| (format!("r{i}"), counters(i))).collect();
        assert_eq!(decode(&serde_json::to_vec(&t).unwrap()).unwrap(), t);
        assert!(matches!(scan(&[]).unwrap(), Table::Binary(v) if v.is_empty()));
        assert!(finish(vec![MAGIC]).is_empty());
    }

    #[test]
    fn corrupt_tables_are_errors_naming_the_place() {
        let t: RunTable = [("r".to_string(), counters(4))].into_iter().collect();
        let bytes = encode(&t);
        assert!(decode(b"not a table").unwrap_err().contains("first byte 0x6e"));
        assert!(decode(&bytes[..bytes.len() - 1]).unwrap_err().contains("body"));
        let mut extra = bytes.clone();
        extra.push(0x05);
        assert!(decode(&extra).is_err());
        let mut dup = bytes.clone();
        dup.extend_from_slice(&bytes[1..]);
        assert!(decode(&dup).unwrap_err().contains("twice"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any bytes: a clean error or a table, never a panic.
        #[test]
        fn mutated_tables_never_panic(seed in 0u64..50, flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
                                      cut in any::<usize>()) {
            let t: RunTable = (0..seed % 6).map(|i| (format!("run-{i}"), counters(seed + i))).collect();
            let mut bytes = encode(&t);
            for (at, b) in flips {
                if !bytes.is_empty() {
                    let n = bytes.len();
                    bytes[at % n] = b;
                }
            }
            let n = bytes.len();
            bytes.truncate(cut % (n + 1));
            let _ = decode(&bytes);
        }
    }
}
