//! A bounded, lock-free queue from the workers to the control side that never blocks a
//! worker: a push into a full queue drops the item and counts it. Used for neighbour resolve
//! requests and pod MAC learn events; the worker asks again with a later packet.
//!
//! Ordering: `ArrayQueue` push/pop synchronise with each other (release/acquire), so the
//! consumer sees an item as it was written; the lost count is a statistic (`Relaxed`).

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

/// See the module docs.
#[derive(Debug)]
pub struct LossyQueue<T> {
    items: ArrayQueue<T>,
    lost: AtomicU64,
}

impl<T> LossyQueue<T> {
    /// A queue of `capacity` (at least 1) items.
    pub fn new(capacity: usize) -> Self {
        LossyQueue { items: ArrayQueue::new(capacity.max(1)), lost: AtomicU64::new(0) }
    }

    /// Queues `item` (any thread). Never blocks: a full queue counts the loss and returns false.
    #[inline]
    pub fn push(&self, item: T) -> bool {
        if self.items.push(item).is_ok() {
            true
        } else {
            self.lost.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Takes the oldest item.
    pub fn pop(&self) -> Option<T> {
        self.items.pop()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items lost to a full queue.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::LossyQueue;

    #[test]
    fn a_full_queue_counts_the_lost_item_and_keeps_the_first() {
        let q = LossyQueue::new(1);
        assert!(q.push(1));
        assert!(!q.push(2));
        assert_eq!(q.lost(), 1);
        assert_eq!(q.pop(), Some(1));
        assert!(q.is_empty());
    }
}
