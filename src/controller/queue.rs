//! A rate-limited work queue, as client-go's: a key is queued at most once, a key being
//! processed that changes again is processed once more afterwards (never twice at once),
//! failures come back after a per-key exponential delay, and keys may be re-added after a
//! delay. Waiting costs nothing: no polling, one timer for the earliest delayed key.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First retry delay of a failing key.
const BASE_DELAY: Duration = Duration::from_millis(100);
/// Longest retry delay of a failing key.
const MAX_DELAY: Duration = Duration::from_secs(60);

struct State<T> {
    ready: VecDeque<T>,
    /// Keys in `ready`.
    queued: HashSet<T>,
    /// Keys handed out and not yet `done`.
    processing: HashSet<T>,
    /// Keys added while being processed: queued again on `done`.
    dirty: HashSet<T>,
    /// Keys to add at a time (the sequence number keeps equal instants apart).
    delayed: BTreeMap<(Instant, u64), T>,
    /// When each delayed key is due (a key waits once, for its earliest time).
    waiting: HashMap<T, (Instant, u64)>,
    seq: u64,
    failures: HashMap<T, u32>,
}

impl<T: Clone + Eq + Hash> State<T> {
    fn add(&mut self, item: T) -> bool {
        if self.processing.contains(&item) {
            self.dirty.insert(item);
            return false;
        }
        if self.queued.insert(item.clone()) {
            self.ready.push_back(item);
            return true;
        }
        false
    }

    /// Moves due delayed keys to the ready queue; returns when the next one is due.
    fn promote(&mut self, now: Instant) -> Option<Instant> {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                return Some(entry.key().0);
            }
            let item = entry.remove();
            self.waiting.remove(&item);
            self.add(item);
        }
        None
    }
}

/// The queue of one controller.
pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    shutdown: CancellationToken,
}

impl<T: Clone + Eq + Hash> WorkQueue<T> {
    /// An empty queue whose [`WorkQueue::next`] returns `None` once `shutdown` fires.
    pub fn new(shutdown: CancellationToken) -> Self {
        WorkQueue {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                delayed: BTreeMap::new(),
                waiting: HashMap::new(),
                seq: 0,
                failures: HashMap::new(),
            }),
            notify: Notify::new(),
            shutdown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` (once, however often it is added before being processed).
    pub fn add(&self, item: T) {
        if self.lock().add(item) {
            self.notify.notify_one();
        }
    }

    /// Queues `item` after `delay`.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let at = Instant::now() + delay;
        let mut st = self.lock();
        if let Some(&(due, seq)) = st.waiting.get(&item) {
            if due <= at {
                return;
            }
            st.delayed.remove(&(due, seq));
        }
        st.seq += 1;
        let seq = st.seq;
        st.delayed.insert((at, seq), item.clone());
        st.waiting.insert(item, (at, seq));
        drop(st);
        // The waiter may have to wake earlier than it planned.
        self.notify.notify_one();
    }

    /// Queues `item` after its next back-off delay (100 ms, doubling, at most 60 s).
    pub fn add_rate_limited(&self, item: T) {
        let delay = {
            let mut st = self.lock();
            let n = st.failures.entry(item.clone()).or_insert(0);
            let delay = BASE_DELAY
                .saturating_mul(2u32.saturating_pow((*n).min(16)))
                .min(MAX_DELAY);
            *n += 1;
            delay
        };
        self.add_after(item, delay);
    }

    /// Forgets `item`'s failures (its next failure waits the shortest delay again).
    pub fn forget(&self, item: &T) {
        self.lock().failures.remove(item);
    }

    /// How many times `item` failed in a row.
    pub fn failures(&self, item: &T) -> u32 {
        self.lock().failures.get(item).copied().unwrap_or(0)
    }

    /// The next key to process (mark it [`WorkQueue::done`] after), or `None` on shutdown.
    pub async fn next(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake = {
                let mut st = self.lock();
                let wake = st.promote(Instant::now());
                if let Some(item) = st.ready.pop_front() {
                    st.queued.remove(&item);
                    st.processing.insert(item.clone());
                    return Some(item);
                }
                wake
            };
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = notified => {}
                _ = timer => {}
            }
        }
    }

    /// Marks `item` processed; if it was added meanwhile, it is queued again.
    pub fn done(&self, item: &T) {
        let mut st = self.lock();
        st.processing.remove(item);
        if st.dirty.remove(item) {
            st.add(item.clone());
            drop(st);
            self.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_delays_and_backs_off() {
        let q = WorkQueue::new(CancellationToken::new());
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.next().await, Some("a"));
        // Added while processing: comes back once, after done.
        q.add("a");
        assert_eq!(q.next().await, Some("b"));
        q.done(&"b");
        q.done(&"a");
        assert_eq!(q.next().await, Some("a"));
        q.done(&"a");

        q.add_rate_limited("c");
        q.add_rate_limited("c");
        assert_eq!(q.failures(&"c"), 2);
        assert_eq!(q.next().await, Some("c"));
        q.done(&"c");
        q.forget(&"c");
        assert_eq!(q.failures(&"c"), 0);

        // A delayed key comes after one added later without delay.
        q.add_after("d", Duration::from_millis(300));
        q.add("e");
        assert_eq!(q.next().await, Some("e"));
        q.done(&"e");
        assert_eq!(q.next().await, Some("d"));
    }

    #[tokio::test]
    async fn next_ends_on_shutdown() {
        let stop = CancellationToken::new();
        let q: WorkQueue<u32> = WorkQueue::new(stop.clone());
        stop.cancel();
        assert_eq!(q.next().await, None);
    }
}
