//! What a worker does when a loop found no work.

use std::time::Duration;

/// Idle strategy of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Spin for `spin_loops` empty loops, then block until a port has frames, another worker
    /// hands one over, the worker is asked to stop, or `max_wait` passes: an idle worker costs
    /// no CPU, and an arriving frame wakes it at once (the kernel's wakeup, not a nap's end).
    /// A worker with a port that cannot wake it (memory ports) naps as `AdaptiveSleep` with
    /// [`FALLBACK_MAX_NAP`] instead.
    AdaptiveWait {
        /// Empty loops before blocking.
        spin_loops: u32,
        /// Longest single wait (the worker republishes its counters after each).
        max_wait: Duration,
    },
    /// Never sleep: lowest latency, one core at 100 %.
    BusyPoll,
    /// Spin for `spin_loops` empty loops, then sleep, doubling from 1 µs up to
    /// `max_sleep` while idle; any work resets it.
    AdaptiveSleep {
        /// Empty loops before the first sleep.
        spin_loops: u32,
        /// Longest single sleep.
        max_sleep: Duration,
    },
}

/// Longest nap of an `AdaptiveWait` worker that cannot block.
pub const FALLBACK_MAX_NAP: Duration = Duration::from_micros(200);

impl Default for IdleStrategy {
    fn default() -> Self {
        IdleStrategy::AdaptiveWait { spin_loops: 1000, max_wait: Duration::from_millis(100) }
    }
}

/// What to do after an idle loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Loop again at once.
    Spin,
    /// Sleep this long.
    Nap(Duration),
    /// Block until woken, at most this long.
    Block(Duration),
}

/// Tracks consecutive idle loops.
#[derive(Debug)]
pub(crate) struct Idler {
    strategy: IdleStrategy,
    idle: u32,
    sleep: Duration,
}

impl Idler {
    pub(crate) fn new(strategy: IdleStrategy) -> Self {
        Idler { strategy, idle: 0, sleep: Duration::from_micros(1) }
    }

    /// The loop did work.
    pub(crate) fn busy(&mut self) {
        self.idle = 0;
        self.sleep = Duration::from_micros(1);
    }

    /// What to do after an idle loop; `can_block` says whether the worker can be woken.
    pub(crate) fn idle(&mut self, can_block: bool) -> Idle {
        let (spin_loops, max_nap) = match self.strategy {
            IdleStrategy::BusyPoll => return Idle::Spin,
            IdleStrategy::AdaptiveSleep { spin_loops, max_sleep } => (spin_loops, max_sleep),
            IdleStrategy::AdaptiveWait { spin_loops, max_wait } => {
                if can_block {
                    self.idle = self.idle.saturating_add(1);
                    return if self.idle <= spin_loops { Idle::Spin } else { Idle::Block(max_wait) };
                }
                (spin_loops, FALLBACK_MAX_NAP)
            }
        };
        self.idle = self.idle.saturating_add(1);
        if self.idle <= spin_loops {
            return Idle::Spin;
        }
        let s = self.sleep;
        self.sleep = (self.sleep * 2).min(max_nap);
        Idle::Nap(s.min(max_nap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_sleep_spins_first_then_backs_off_up_to_the_cap() {
        let mut i =
            Idler::new(IdleStrategy::AdaptiveSleep { spin_loops: 2, max_sleep: Duration::from_micros(4) });
        assert_eq!(i.idle(true), Idle::Spin);
        assert_eq!(i.idle(true), Idle::Spin);
        assert_eq!(i.idle(true), Idle::Nap(Duration::from_micros(1)));
        assert_eq!(i.idle(true), Idle::Nap(Duration::from_micros(2)));
        assert_eq!(i.idle(true), Idle::Nap(Duration::from_micros(4)));
        assert_eq!(i.idle(true), Idle::Nap(Duration::from_micros(4)));
        i.busy();
        assert_eq!(i.idle(true), Idle::Spin);
    }

    #[test]
    fn adaptive_wait_spins_then_blocks_or_naps_when_it_cannot_be_woken() {
        let wait = IdleStrategy::AdaptiveWait { spin_loops: 2, max_wait: Duration::from_millis(50) };
        let mut i = Idler::new(wait);
        assert_eq!(i.idle(true), Idle::Spin);
        assert_eq!(i.idle(true), Idle::Spin);
        assert_eq!(i.idle(true), Idle::Block(Duration::from_millis(50)));
        assert_eq!(i.idle(true), Idle::Block(Duration::from_millis(50)));
        i.busy();
        assert_eq!(i.idle(true), Idle::Spin);
        let mut i = Idler::new(wait);
        assert_eq!(i.idle(false), Idle::Spin);
        assert_eq!(i.idle(false), Idle::Spin);
        assert_eq!(i.idle(false), Idle::Nap(Duration::from_micros(1)));
        for _ in 0..20 {
            assert!(matches!(i.idle(false), Idle::Nap(d) if d <= FALLBACK_MAX_NAP));
        }
    }

    #[test]
    fn busy_poll_never_sleeps() {
        let mut i = Idler::new(IdleStrategy::BusyPoll);
        assert!((0..10_000).all(|_| i.idle(true) == Idle::Spin));
    }
}
