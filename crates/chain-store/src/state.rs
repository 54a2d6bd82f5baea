//! World state: at the head, and at older heights through the change sets.

use storage_api::{Direction, KvReader, ReadExt};

use crate::ChainStore;
use crate::error::ChainError;
use crate::model::{BlockRef, ChainModel};
use crate::schema::{Canonical, ChangeSet, State, StateChanges};

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// The value of `key` at the head.
    pub fn state(&self, key: &M::StateKey) -> Result<Option<M::StateValue>, ChainError> {
        Ok(self.store.get::<State<M>>(key)?.map(|s| s.0))
    }

    /// The values of `keys` at the head, in the same order.
    pub fn state_many(&self, keys: &[M::StateKey]) -> Result<Vec<Option<M::StateValue>>, ChainError> {
        Ok(self.store.multi_get::<State<M>>(keys)?.into_iter().map(|v| v.map(|s| s.0)).collect())
    }

    /// The values of `keys` after the canonical block at `number` was applied.
    ///
    /// Walks the change sets of the canonical blocks above `number` (oldest first): the first
    /// one that wrote a key recorded the value it replaced, which is the answer; keys no later
    /// block wrote have their head value. The cost grows with the distance from the head, and
    /// the change sets must not be pruned: `number + 1` must be at or above the pruning
    /// boundary.
    pub fn state_at(&self, keys: &[M::StateKey], number: u64) -> Result<Vec<Option<M::StateValue>>, ChainError> {
        let ptrs = self.pointers();
        let head = ptrs.head.ok_or(ChainError::NotInitialized)?;
        if number > head.number {
            return Err(ChainError::AboveHead { number, head: head.number });
        }
        let first = ptrs.first.map_or(0, |f| f.number);
        let boundary = ptrs.pruned_below.max(first + 1);
        if number + 1 < boundary {
            return Err(ChainError::Pruned { what: "state history", number, pruned_below: boundary - 1 });
        }
        let mut out: Vec<Option<Option<M::StateValue>>> = vec![None; keys.len()];
        let mut open = keys.len();
        self.replaced_after(number, head.number, |changes, previous| {
            for (i, key) in keys.iter().enumerate() {
                if out[i].is_none()
                    && let Ok(pos) = changes.writes.binary_search_by(|(k, _)| k.cmp(key))
                {
                    out[i] = Some(previous[pos].clone());
                    open -= 1;
                }
            }
            open > 0
        })?;
        let unresolved: Vec<M::StateKey> =
            keys.iter().zip(&out).filter(|(_, o)| o.is_none()).map(|(k, _)| k.clone()).collect();
        let mut at_head = self.state_many(&unresolved)?.into_iter();
        Ok(out.into_iter().map(|o| o.unwrap_or_else(|| at_head.next().flatten())).collect())
    }

    /// Hands `f` the change set of each canonical block `number + 1..=head` that wrote state,
    /// oldest first, with the values its writes replaced, until `f` returns false. The first
    /// block to write a key replaced the value the key held after block `number`.
    pub(crate) fn replaced_after(
        &self,
        number: u64,
        head: u64,
        mut f: impl FnMut(&ChangeSet<M>, &[Option<M::StateValue>]) -> bool,
    ) -> Result<(), ChainError> {
        for entry in self.store.iter::<Canonical<M>>(number + 1..=head, Direction::Forward)? {
            let (h, hash) = entry?;
            let Some(changes) = self.change_set(&BlockRef { number: h, hash: hash.0 })? else { continue };
            let Some(previous) = &changes.previous else {
                return Err(self.missing::<StateChanges<M>>(h, &hash.0));
            };
            if !f(&changes, previous) {
                break;
            }
        }
        Ok(())
    }
}
