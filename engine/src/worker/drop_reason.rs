//! Why a worker dropped a frame: one table, declared once. Each reason is a
//! `Copy` value that is also its counter's index. The pipeline adds its own
//! reasons to this table (issue 5); names are stable metric labels.

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $desc:literal;)*) => {
        /// Why a frame was dropped. `name()` is the metric label,
        /// `description()` one line for operators.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter-index order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (size of a per-reason counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name (metric label).
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// One-line description.
            pub const fn description(self) -> &'static str {
                match self { $(DropReason::$variant => $desc,)* }
            }

            /// Counter index.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    /// The processor decided to drop (test and benchmark processors).
    Discard = "discard", "the frame processor discarded the frame on purpose";
    /// Too short for the processor to handle.
    Runt = "runt", "frame shorter than an Ethernet header";
    /// The verdict named a port the worker does not have.
    NoSuchPort = "no_such_port", "the processor chose a tx port this worker does not own";
    /// The tx ring stayed full and the staged backlog overflowed.
    TxBacklog = "tx_backlog", "tx ring full for longer than the staged backlog could absorb";
    /// The verdict named a worker that does not exist.
    NoSuchWorker = "no_such_worker", "the processor chose a handoff target worker that does not exist";
    /// The target worker's handoff ring was full.
    HandoffFull = "handoff_full", "the target worker's handoff ring was full";
    /// No free frame to copy a handed-off frame into.
    HandoffNoFrame = "handoff_no_frame", "no free frame in this worker's pool for a handed-off frame";
    /// Frames still staged when the worker stopped.
    Shutdown = "shutdown", "frame still staged for transmission when the worker stopped";
}

#[cfg(test)]
mod tests {
    use super::DropReason;

    #[test]
    fn every_reason_has_a_unique_name_and_its_own_index() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!r.description().is_empty());
            let same = DropReason::ALL.iter().filter(|o| o.name() == r.name()).count();
            assert_eq!(same, 1, "{} named twice", r.name());
        }
    }
}
