//! The node's VTEP MAC when `node.vtep_mac` is not set: made once at random (locally
//! administered, unicast) and kept in `<node.state_dir>/vtep_mac`, so the VtepMAC in the
//! node's lease, and the inner source MAC of its VXLAN frames, stay the same across restarts.
//! `weft run` settles it before it touches etcd.
//!
//! The file holds the address and a newline (`0a:58:c6:13:01:01`). It is written to a
//! temporary file in the same directory and renamed into place, so it is either absent or
//! whole; a start that finds it unreadable or not a unicast address stops rather than make
//! another (the old one may be in other nodes' forwarding tables).

use std::path::Path;

use crate::flannel::MacAddr;
use crate::state_file::{self, StateFileError};

/// The file's name under `node.state_dir`.
pub const FILE: &str = "vtep_mac";

/// Why the kept VTEP MAC could not be read or made.
pub type VtepMacError = StateFileError;

/// The MAC kept under `state_dir`, `None` when there is none yet.
pub fn load(state_dir: &Path) -> Result<Option<MacAddr>, VtepMacError> {
    let Some((text, _mode)) = state_file::read(state_dir, FILE)? else {
        return Ok(None);
    };
    match text.trim().parse::<MacAddr>() {
        Ok(mac) if mac.is_unicast() => Ok(Some(mac)),
        _ => Err(state_file::invalid(
            &state_dir.join(FILE),
            format!(
                "expected a unicast MAC address, found {:?} (fix it, or remove it to make a new one)",
                text.trim()
            ),
        )),
    }
}

/// The MAC kept under `state_dir`, made (and `state_dir` created) when there is none.
pub fn load_or_create(state_dir: &Path) -> Result<MacAddr, VtepMacError> {
    if let Some(mac) = load(state_dir)? {
        return Ok(mac);
    }
    let mac = random();
    if state_file::create(state_dir, FILE, 0o644, &format!("{mac}\n"))? {
        return Ok(mac);
    }
    // Another start made it in the meantime: its MAC is the node's.
    load(state_dir)?
        .ok_or_else(|| state_file::invalid(&state_dir.join(FILE), "vanished after it was made".into()))
}

/// A random locally administered (U/L bit set) unicast (I/G bit clear) MAC.
fn random() -> MacAddr {
    let mut octets: [u8; 6] = rand::random();
    octets[0] = (octets[0] | 0b10) & !0b01;
    MacAddr(octets)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_made_mac_is_locally_administered_unicast_and_kept_0644() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/state");
        let mac = load_or_create(&state).unwrap();
        assert!(mac.is_unicast() && mac.0[0] & 0b10 != 0, "{mac}");
        assert_eq!(load_or_create(&state).unwrap(), mac);
        let file = state.join(FILE);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{mac}\n"));
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE], "no temporary file is left");
    }

    #[test]
    fn a_kept_file_that_is_not_a_unicast_mac_stops_the_start_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["01:00:5e:00:00:01\n", "garbage"] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            let e = load_or_create(dir.path()).unwrap_err().to_string();
            assert!(e.starts_with("node.state_dir: cannot use ") && e.contains(FILE), "{e}");
            assert!(e.contains("expected a unicast MAC address"), "{e}");
        }
    }

    #[test]
    fn random_macs_differ_and_are_all_locally_administered_unicast() {
        let macs: std::collections::BTreeSet<_> = (0..64).map(|_| random()).collect();
        assert_eq!(macs.len(), 64);
        assert!(macs.iter().all(|m| m.is_unicast() && m.0[0] & 0b10 != 0));
    }
}
