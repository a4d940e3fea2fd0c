//! The node's WireGuard private key: made once at random and kept in
//! `<node.state_dir>/wg_key`, readable by its owner only (0600), so the public key in the
//! node's lease stays the same across restarts (peers keep it in their configuration).
//! The etcd agent settles it once it reads a wireguard network config, before it takes the
//! lease, as flanneld's wireguard backend settles `/run/flannel/wgkey`; nodes of other backends
//! never make one.
//!
//! The file holds the key as `wg genkey` prints it (base64 and a newline), so an operator can
//! derive the public key with `wg pubkey < wg_key`, and flannel's key file can be copied in.
//! It is written to a temporary file in the same directory whose mode is set on the open file
//! before the key is written, then renamed into place: it is either absent or whole, and never
//! readable by others. A start that finds it unreadable, not a key, or readable by group or
//! others stops rather than make another.

use std::path::Path;

use x25519_dalek::{PublicKey, StaticSecret};

use crate::flannel::WgKey;
use crate::state_file::{self, StateFileError};

/// The file's name under `node.state_dir`.
pub const FILE: &str = "wg_key";

/// The node's key pair.
#[derive(Clone)]
pub struct WgKeyPair {
    /// The private key (clamped by x25519 when used).
    pub private: StaticSecret,
    /// The public key, published in the lease.
    pub public: WgKey,
}

impl std::fmt::Debug for WgKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WgKeyPair {{ public: {} }}", self.public)
    }
}

impl WgKeyPair {
    fn from_private(bytes: [u8; 32]) -> Self {
        let private = StaticSecret::from(bytes);
        let public = WgKey(PublicKey::from(&private).to_bytes());
        WgKeyPair { private, public }
    }
}

/// Why the kept key could not be read or made.
pub type WgKeyError = StateFileError;

/// The key pair kept under `state_dir`, `None` when there is none yet.
pub fn load(state_dir: &Path) -> Result<Option<WgKeyPair>, WgKeyError> {
    let Some((text, mode)) = state_file::read(state_dir, FILE)? else {
        return Ok(None);
    };
    let path = state_dir.join(FILE);
    if mode & 0o077 != 0 {
        return Err(state_file::invalid(
            &path,
            format!(
                "a private key must be readable by its owner only, its mode is {:o} (chmod 600 it)",
                mode & 0o777
            ),
        ));
    }
    match text.trim().parse::<WgKey>() {
        Ok(key) => Ok(Some(WgKeyPair::from_private(key.0))),
        Err(e) => Err(state_file::invalid(
            &path,
            format!("not a WireGuard private key: {e} (fix it, or remove it to make a new one)"),
        )),
    }
}

/// The key pair kept under `state_dir`, made (and `state_dir` created) when there is none.
pub fn load_or_create(state_dir: &Path) -> Result<WgKeyPair, WgKeyError> {
    if let Some(pair) = load(state_dir)? {
        return Ok(pair);
    }
    let mut bytes: [u8; 32] = rand::random();
    // Clamped as x25519 and `wg genkey` do, so the file reads back to the same scalar anywhere.
    bytes[0] &= 248;
    bytes[31] = (bytes[31] & 127) | 64;
    if state_file::create(state_dir, FILE, 0o600, &format!("{}\n", WgKey(bytes)))? {
        return Ok(WgKeyPair::from_private(bytes));
    }
    // Another start made it in the meantime: its key is the node's.
    load(state_dir)?
        .ok_or_else(|| state_file::invalid(&state_dir.join(FILE), "vanished after it was made".into()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_made_key_is_kept_0600_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/state");
        let pair = load_or_create(&state).unwrap();
        assert_eq!(load_or_create(&state).unwrap().public, pair.public);
        let file = state.join(FILE);
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with('\n') && text.trim().len() == 44, "{text:?}");
        let names: Vec<_> = std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE], "no temporary file is left");
    }

    #[test]
    fn the_public_key_is_wg_pubkeys() {
        // RFC 7748 section 6.1: Alice's private and public keys.
        let dir = tempfile::tempdir().unwrap();
        let private = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
        std::fs::write(dir.path().join(FILE), format!("{private}\n")).unwrap();
        std::fs::set_permissions(dir.path().join(FILE), std::fs::Permissions::from_mode(0o600)).unwrap();
        let pair = load(dir.path()).unwrap().unwrap();
        assert_eq!(pair.public.to_string(), "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
    }

    #[test]
    fn a_kept_file_that_is_no_key_or_readable_by_others_stops_the_start_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE);
        std::fs::write(&file, "garbage\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("node.state_dir: cannot use ") && e.contains(FILE), "{e}");
        assert!(e.contains("not a WireGuard private key"), "{e}");
        std::fs::write(&file, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("readable by its owner only") && e.contains("644"), "{e}");
    }
}
