//! What a worker does when a loop found no work.

use std::time::Duration;

/// Idle strategy of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStrategy {
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

impl Default for IdleStrategy {
    fn default() -> Self {
        IdleStrategy::AdaptiveSleep { spin_loops: 1000, max_sleep: Duration::from_micros(200) }
    }
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

    /// How long to sleep after an idle loop (`None`: keep spinning).
    pub(crate) fn idle(&mut self) -> Option<Duration> {
        match self.strategy {
            IdleStrategy::BusyPoll => None,
            IdleStrategy::AdaptiveSleep { spin_loops, max_sleep } => {
                self.idle = self.idle.saturating_add(1);
                if self.idle <= spin_loops {
                    return None;
                }
                let s = self.sleep;
                self.sleep = (self.sleep * 2).min(max_sleep);
                Some(s.min(max_sleep))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_sleep_spins_first_then_backs_off_up_to_the_cap() {
        let mut i =
            Idler::new(IdleStrategy::AdaptiveSleep { spin_loops: 2, max_sleep: Duration::from_micros(4) });
        assert_eq!(i.idle(), None);
        assert_eq!(i.idle(), None);
        assert_eq!(i.idle(), Some(Duration::from_micros(1)));
        assert_eq!(i.idle(), Some(Duration::from_micros(2)));
        assert_eq!(i.idle(), Some(Duration::from_micros(4)));
        assert_eq!(i.idle(), Some(Duration::from_micros(4)));
        i.busy();
        assert_eq!(i.idle(), None);
    }

    #[test]
    fn busy_poll_never_sleeps() {
        let mut i = Idler::new(IdleStrategy::BusyPoll);
        assert!((0..10_000).all(|_| i.idle().is_none()));
    }
}
