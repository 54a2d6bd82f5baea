//! What readers keep of a segment between reads: its footer and index, its hash table's
//! header, filter and fences; in small LRU caches.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use super::format::{Entry, Footer};
use super::keys::Header;

/// A segment's footer and index.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) footer: Footer,
    pub(crate) entries: Vec<Entry>,
    /// The segment object's key.
    pub(crate) key: String,
}

/// A segment's hash table, without its entries.
#[derive(Debug)]
pub(crate) struct Table {
    /// The table object's key.
    pub(crate) key: String,
    pub(crate) header: Header,
    pub(crate) filter: Vec<u8>,
    pub(crate) fences: Vec<u8>,
}

/// A least-recently-used map of at most `capacity` entries.
#[derive(Debug)]
pub(crate) struct Lru<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Lru { map: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        let v = self.map.get(key)?.clone();
        self.touch(key);
        Some(v)
    }

    fn touch(&mut self, key: &K) {
        if let Some(i) = self.order.iter().position(|k| k == key) {
            self.order.remove(i);
        }
        self.order.push_back(key.clone());
    }

    pub(crate) fn put(&mut self, key: K, value: V) {
        self.map.insert(key.clone(), value);
        self.touch(&key);
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) {
        self.map.remove(key);
        if let Some(i) = self.order.iter().position(|k| k == key) {
            self.order.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recently_used() {
        let mut lru = Lru::new(2);
        lru.put(1, "a");
        lru.put(2, "b");
        assert_eq!(lru.get(&1), Some("a"));
        lru.put(3, "c");
        assert_eq!(lru.get(&2), None, "2 was the least recently used");
        assert_eq!((lru.get(&1), lru.get(&3)), (Some("a"), Some("c")));
        lru.remove(&1);
        assert_eq!(lru.get(&1), None);
    }
}
