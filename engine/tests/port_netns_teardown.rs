//! The test namespace guard removes its namespace also when the test fails.

mod common;

use common::{Netns, root_or_skip, unique_stem, veth_pair};

#[test]
fn a_failing_test_still_removes_its_namespace() {
    if !root_or_skip("a_failing_test_still_removes_its_namespace") {
        return;
    }
    let name = format!("{}n", unique_stem());
    let n2 = name.clone();
    let r = std::thread::spawn(move || {
        let ns = Netns::new(&n2).unwrap();
        veth_pair(&ns, "wxtd0", "02:00:00:00:08:01", "wxtd1", "02:00:00:00:08:02").unwrap();
        assert!(Netns::exists(&n2));
        panic!("simulated test failure");
    })
    .join();
    assert!(r.is_err(), "the inner test failed");
    assert!(!Netns::exists(&name), "namespace {name} removed by the guard");
}
