//! Which shard holds a run, and how many open runs each shard may hold.
//!
//! Runs are spread over the [`SHARDS`] run tables by SipHash-2-4 of their id under a secret
//! key ([`ShardKey`]). The key is created once per Envoy process in shared data and read by every
//! worker VM ([`adopt_shard_key`]), so all VMs map a run to the same shard (the merge is exact
//! only then), and a client that knows the hash function but not the key cannot pick ids that
//! land in one shard to evict a chosen run.
//!
//! The bound is exact: shard `i` holds at most [`Sharding::cap`] open runs, `max / 64` or one
//! more (the first `max % 64` shards), and the caps sum to `max_open_runs`, so no more than
//! `max_open_runs` runs are ever open at once. A new run past its shard's cap closes that shard's
//! oldest open run, even when other shards have room: with the keyed hash that depends on chance
//! (how runs fall into shards), not on what a client sends.

use super::{host_err, MergeError, SharedStore, StoreError, MAX_CAS_ROUNDS, SHARDS, WINDOW_KEY};

/// The shared-data entry holding the process's shard key (16 bytes).
pub const SHARD_KEY_ENTRY: &str = "sfr2l/shard_key";

/// The secret key of the shard hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShardKey([u8; 16]);

impl std::fmt::Debug for ShardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardKey(..)") // never in a log
    }
}

impl ShardKey {
    pub const fn new(bytes: [u8; 16]) -> Self {
        ShardKey(bytes)
    }

    fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(ShardKey)
    }

    /// The shard of `run`.
    pub fn shard_of(&self, run: &str) -> usize {
        (siphash24(&self.0, run.as_bytes()) % SHARDS as u64) as usize
    }
}

/// The shard key and the bound on open runs: everything a merge needs to place a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharding {
    pub key: ShardKey,
    pub max_open_runs: u32,
}

impl Sharding {
    pub fn shard_of(&self, run: &str) -> usize {
        self.key.shard_of(run)
    }

    /// Open runs shard `shard` may hold (as many emitted runs are kept beside them). The caps
    /// of all shards sum to `max_open_runs`; a bound below [`SHARDS`] still gives each shard
    /// one (the configuration refuses such bounds).
    pub fn cap(&self, shard: usize) -> usize {
        let max = self.max_open_runs as usize;
        (max / SHARDS + usize::from(shard < max % SHARDS)).max(1)
    }
}

/// The process's shard key: the one in shared data, or `fresh` if this VM creates it.
///
/// Envoy creates a missing key whatever CAS token the write carries, and refuses a write to an
/// existing key whose token is not current (proxy-wasm-cpp-host `src/shared_data.cc`,
/// `SharedData::set`). Tokens come from one process-wide counter, each given to one write
/// (`src/shared_data.h`, `nextCas`), so a token read from another entry never matches this
/// entry's: writing `fresh` with it creates the entry if it is still missing and fails with a
/// mismatch if another VM created it first. Either way the value read back is the one every VM
/// uses. (The counter wraps after 2^32 writes; only then could two entries hold one token.)
pub fn adopt_shard_key<S: SharedStore>(store: &S, fresh: [u8; 16]) -> Result<ShardKey, MergeError> {
    for _ in 0..MAX_CAS_ROUNDS {
        let write = match store.get(SHARD_KEY_ENTRY).map_err(host_err)? {
            Some((v, _)) if v.len() == 16 => {
                return ShardKey::from_slice(&v).ok_or(MergeError::NotInitialised(SHARD_KEY_ENTRY.into()))
            }
            // Damaged or empty: replaced under its own token.
            Some((_, cas)) => store.set(SHARD_KEY_ENTRY, &fresh, Some(cas)),
            None => {
                let Some((_, other)) = store.get(WINDOW_KEY).map_err(host_err)? else {
                    return Err(MergeError::NotInitialised(WINDOW_KEY.into()));
                };
                store.set(SHARD_KEY_ENTRY, &fresh, Some(other))
            }
        };
        match write {
            Ok(()) | Err(StoreError::CasMismatch) => continue, // read back what is there now
            Err(StoreError::Host(h)) => return Err(MergeError::Host(h)),
        }
    }
    Err(MergeError::Contended(SHARD_KEY_ENTRY.into()))
}

/// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) of `msg`
/// under `key`.
pub fn siphash24(key: &[u8; 16], msg: &[u8]) -> u64 {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let (k0, k1) = (word(&key[..8]), word(&key[8..]));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let round = |v: &mut [u64; 4]| {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    };
    let chunks = msg.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        let m = word(c);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let last = word(tail) | ((msg.len() as u64 & 0xff) << 56);
    v[3] ^= last;
    round(&mut v);
    round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors of the SipHash paper (appendix A) and its implementation's table.
    #[test]
    fn siphash_matches_the_reference_vectors() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(&key, &msg), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(&key, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(&key, &[0]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(&key, &msg[..8]), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn caps_sum_to_the_bound_and_differ_by_at_most_one() {
        for max in [64u32, 65, 100, 127, 1000, 1024, 1025, 100_000] {
            let s = Sharding { key: ShardKey::new([7; 16]), max_open_runs: max };
            let caps: Vec<usize> = (0..SHARDS).map(|i| s.cap(i)).collect();
            assert_eq!(caps.iter().sum::<usize>(), max as usize, "max {max}");
            assert!(caps.iter().max().unwrap() - caps.iter().min().unwrap() <= 1, "max {max}: {caps:?}");
        }
    }
}
