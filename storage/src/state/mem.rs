//! [`MemStore`]: the in-memory [`KvStore`] for unit tests elsewhere, a `BTreeMap` behind a lock
//! with the same semantics as [`super::RocksStore`]. Nothing is persisted.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use super::{BatchOp, KvStore, ScanIter, StateBatch};
use crate::Result;

/// An in-memory key-value store.
#[derive(Debug, Default)]
pub struct MemStore {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl KvStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read().get(key).cloned())
    }

    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let map = self.map.read();
        Ok(keys.iter().map(|k| map.get(*k).cloned()).collect())
    }

    fn scan(&self, from: &[u8], to: &[u8]) -> Result<ScanIter<'_>> {
        if from >= to {
            return Ok(Box::new(std::iter::empty()));
        }
        // Copy the range out: a consistent view that does not hold the lock.
        let items: Vec<_> = self
            .map
            .read()
            .range::<[u8], _>((
                std::ops::Bound::Included(from),
                std::ops::Bound::Excluded(to),
            ))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Ok(Box::new(items.into_iter()))
    }

    fn commit(&self, batch: &StateBatch, _sync: bool) -> Result<()> {
        let mut map = self.map.write();
        for op in batch.iter() {
            match op {
                BatchOp::Put(k, v) => {
                    map.insert(k.to_vec(), v.to_vec());
                }
                BatchOp::Delete(k) => {
                    map.remove(k);
                }
                BatchOp::DeleteRange(from, to) => {
                    let mut tail = map.split_off(from);
                    let mut after = tail.split_off(to);
                    map.append(&mut after);
                }
            }
        }
        Ok(())
    }

    fn approximate_size(&self, from: &[u8], to: &[u8]) -> u64 {
        if from >= to {
            return 0;
        }
        self.map
            .read()
            .range::<[u8], _>((
                std::ops::Bound::Included(from),
                std::ops::Bound::Excluded(to),
            ))
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }
}
