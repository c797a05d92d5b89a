//! Where runs go: skewed ids spread, an adversary without the key cannot aim, and every VM
//! adopts one key.

use super::*;

/// How run ids a client sends in practice spread: long shared prefixes, ids that differ in their
/// last byte, plain numbers. They fall into tables as random ids do (the most loaded of 64 tables
/// holds about 27 of 1,024 runs, 16 on average; the test allows 36); a hash of a prefix, or one
/// without mixing, puts them in a few tables.
#[test]
fn skewed_ids_spread_like_random_ones() {
    let families: [Box<dyn Fn(usize) -> String>; 4] = [
        Box::new(|i| format!("loadtest-2026-12-07T10:00:00Z-checkout-service-v2-{i:04}")),
        Box::new(|i| format!("run-{}", char::from(b'!' + (i % 94) as u8)).repeat(1 + i / 94)),
        Box::new(|i| format!("{}", i * 64)),
        Box::new(|i| format!("{:0>40}", i << 6)),
    ];
    for (f, family) in families.iter().enumerate() {
        let mut load = [0usize; SHARDS];
        let ids: std::collections::BTreeSet<String> = (0..1024).map(family).collect();
        assert_eq!(ids.len(), 1024);
        for id in &ids {
            load[shard_of(id)] += 1;
        }
        let most = load.iter().max().unwrap();
        assert!(*most <= 36, "family {f}: {most} of 1,024 ids in one table: {load:?}");
    }
}

/// An adversary who knows the hash function (FNV-1a before, SipHash-2-4 now) but not the key
/// crafts ids for the table of a run in progress, to close it early. With the key, its ids fall
/// anywhere and the run stays open; had it guessed the key, the same flood would close the run.
#[test]
fn an_adversary_without_the_key_cannot_evict_a_chosen_run() {
    let fnv = |run: &str| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in run.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % SHARDS as u64) as usize
    };
    let guesses = [ShardKey::new([0; 16]), ShardKey::new(*b"sfr2l/shard_key!")];
    let victim = "victim-run";
    let crafted = |target: &dyn Fn(&str) -> usize| -> Vec<String> {
        let want = target(victim);
        (0..).map(|i| format!("evil-{i}")).filter(|r| target(r) == want).take(200).collect()
    };
    let mut floods: Vec<Vec<String>> = vec![crafted(&fnv)];
    floods.extend(guesses.iter().map(|g| crafted(&|r: &str| g.shard_of(r))));
    let attack = |key: ShardKey, flood: &[String]| -> bool {
        let s = init();
        let sharding = Sharding { key, max_open_runs: 1024 };
        merge_run(&s, &sharding, victim, &one_response(0)).unwrap();
        let mut closed = false;
        for (i, r) in flood.iter().enumerate() {
            let m = merge_run(&s, &sharding, r, &one_response(1 + i as u64)).unwrap();
            closed |= m.evicted.iter().any(|(e, _)| e == victim);
        }
        closed
    };
    for (n, flood) in floods.iter().enumerate() {
        assert!(!attack(KEY, flood), "flood {n}: 200 crafted ids closed the victim under the secret key");
    }
    for (guess, flood) in guesses.iter().zip(&floods[1..]) {
        assert!(attack(*guess, flood), "had the key been guessed, the flood would close the victim");
    }
}

/// A store whose first read of the shard key finds nothing, and lets another VM create the key
/// right after that read: the race of two VMs starting together.
struct Racing<'a> {
    inner: &'a MemoryStore,
    other_vm: std::cell::RefCell<Option<OtherVm<'a>>>,
}

/// What the other VM does when it gets its turn.
type OtherVm<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;

impl SharedStore for Racing<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        let v = self.inner.get(key)?;
        if key == SHARD_KEY_ENTRY && v.is_none() {
            if let Some(f) = self.other_vm.borrow_mut().take() {
                f(self.inner);
            }
        }
        Ok(v)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.inner.set(key, value, cas)
    }
}

/// Every VM uses the key that was stored first, also when another VM creates it between this
/// VM's read and its write; a damaged entry is replaced.
#[test]
fn every_vm_adopts_the_first_shard_key() {
    let s = init();
    let first = std::cell::Cell::new(None);
    let racing = Racing {
        inner: &s,
        other_vm: std::cell::RefCell::new(Some(Box::new(|st: &MemoryStore| {
            first.set(Some(adopt_shard_key(st, [1; 16]).unwrap()));
        }))),
    };
    let late = adopt_shard_key(&racing, [2; 16]).unwrap();
    assert_eq!(Some(late), first.get(), "both VMs hold one key");
    assert_eq!(late, ShardKey::new([1; 16]));
    assert_eq!(adopt_shard_key(&s, [3; 16]).unwrap(), late, "a VM started later adopts it too");

    s.set(SHARD_KEY_ENTRY, b"short", None).unwrap();
    assert_eq!(adopt_shard_key(&s, [4; 16]).unwrap(), ShardKey::new([4; 16]));
    let fresh = MemoryStore::default();
    assert!(matches!(adopt_shard_key(&fresh, [5; 16]), Err(MergeError::NotInitialised(_))));
}
