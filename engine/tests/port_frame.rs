//! Frames give the processing code the whole chunk: at least 128 bytes of
//! headroom on receive, growing at the front for encapsulation and shrinking
//! for decapsulation, in place.

use weft_engine::port::{FRAME_SIZE, FramePool, MIN_HEADROOM, RX_HEADROOM};

#[test]
fn a_received_frame_grows_by_the_vxlan_header_in_place_and_shrinks_back() {
    let mut pool = FramePool::new(4).unwrap();
    let mut f = pool.copy_in(&[7u8; 60]).unwrap();
    let addr = f.addr();
    {
        let mut v = pool.view(&mut f);
        assert!(v.headroom() >= MIN_HEADROOM);
        assert_eq!(v.offset(), RX_HEADROOM);
        assert!(v.push_front(50), "VXLAN encap");
        v.data_mut()[..50].fill(0xee);
        assert_eq!(v.len(), 110);
        assert_eq!(&v.data()[50..], &[7u8; 60][..]);
        assert!(v.pull_front(50), "decap");
        assert!(v.push_front(20), "IPIP encap");
        assert!(!v.push_front(FRAME_SIZE), "cannot grow past the chunk start");
        assert_eq!(v.len(), 80);
        assert!(!v.set_bounds(FRAME_SIZE - 10, 11));
        assert!(v.set_bounds(0, FRAME_SIZE));
    }
    assert_eq!(f.len(), FRAME_SIZE);
    assert_eq!(f.addr(), addr - RX_HEADROOM as u64, "same chunk, start moved");
    pool.free(f);
    assert_eq!(pool.free_frames(), 4);
}

#[test]
fn a_pool_hands_out_each_chunk_once_until_it_is_freed() {
    let mut pool = FramePool::new(3).unwrap();
    let frames: Vec<_> = (0..3).map(|_| pool.alloc().unwrap()).collect();
    assert!(pool.alloc().is_none());
    let mut chunks: Vec<u32> = frames.iter().map(|f| f.chunk()).collect();
    chunks.sort_unstable();
    assert_eq!(chunks, [0, 1, 2]);
    for f in frames {
        pool.free(f);
    }
    assert_eq!(pool.free_frames(), 3);
    assert_eq!(pool.copies(), 0);
}
