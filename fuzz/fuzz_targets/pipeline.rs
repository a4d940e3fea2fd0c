//! Arbitrary frames into the full forwarding pipeline, from each port kind (pod, uplink,
//! exception) and each backend: every frame gets exactly one verdict, a transmitted frame lies
//! inside its chunk, and nothing panics. The first input byte picks the port and the backend;
//! the rest is the frame, processed alone and then in a batch with its own truncations.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use weft_engine::pipeline::Pipeline;
use weft_engine::pipeline::sample::{Backend, EXCEPTION, UPLINK, node, pod};
use weft_engine::port::{FRAME_SIZE, FramePool};
use weft_engine::worker::{FrameProcessor, Verdict};

const BACKENDS: [Backend; 4] = [Backend::FLANNEL_VXLAN, Backend::CALICO_VXLAN, Backend::Ipip, Backend::HostGw];

thread_local! {
    static NODES: RefCell<Vec<(weft_engine::pipeline::RouteProgrammer, Pipeline)>> = RefCell::new(
        BACKENDS.iter().flat_map(|&b| [node(b, false, 3).unwrap(), node(b, true, 3).unwrap()]).collect()
    );
    static POOL: RefCell<FramePool> = RefCell::new(FramePool::new(64).unwrap());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let port = match sel & 3 {
        0 => UPLINK,
        1 => EXCEPTION,
        2 => pod(0).2,
        _ => pod(2).2,
    };
    let which = usize::from(sel >> 2) % (BACKENDS.len() * 2);
    NODES.with_borrow_mut(|nodes| {
        POOL.with_borrow_mut(|pool| {
            let pipe = &mut nodes[which].1;
            let lens = [frame.len(), frame.len() / 2, frame.len().saturating_sub(1)];
            let mut rx: Vec<_> = lens.iter().filter_map(|&n| pool.copy_in(&frame[..n])).collect();
            let mut verdicts = Vec::new();
            pipe.process_batch(port, pool, &mut rx, &mut verdicts);
            assert_eq!(verdicts.len(), rx.len());
            for (f, v) in rx.into_iter().zip(verdicts) {
                if let Verdict::Tx(_) = v {
                    assert!(f.offset() + f.len() <= FRAME_SIZE);
                    assert!(f.len() >= 14);
                }
                pool.free(f);
            }
        })
    });
});
