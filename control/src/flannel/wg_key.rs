//! WireGuard keys as flannel and wg(8) write them: 32 bytes in standard base64 with padding
//! (44 characters, `wgtypes.Key.String()`).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A 32-byte WireGuard key: a node's public key, or a pre-shared key ([`Psk`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WgKey(pub [u8; 32]);

/// Why a text is not a WireGuard key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WgKeyParseError {
    /// Not standard base64.
    #[error("not base64 (a key is 44 characters of standard base64, as `wg genkey` prints)")]
    NotBase64,
    /// Decodes to another length.
    #[error("decodes to {0} bytes, a key has 32")]
    Length(usize),
}

impl FromStr for WgKey {
    type Err = WgKeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| WgKeyParseError::NotBase64)?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| WgKeyParseError::Length(bytes.len()))?;
        Ok(WgKey(key))
    }
}

impl fmt::Display for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WgKey({self})")
    }
}

/// A pre-shared key (`Backend.PSK`): a secret, never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Psk(pub WgKey);

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_wg_base64() {
        let text = "GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=";
        let key: WgKey = text.parse().unwrap();
        assert_eq!(key.to_string(), text);
        assert_eq!(format!("{text}\n").parse::<WgKey>(), Ok(key), "a trailing newline is ignored");
    }

    #[test]
    fn wrong_texts_say_why() {
        assert_eq!("not base64!".parse::<WgKey>(), Err(WgKeyParseError::NotBase64));
        assert_eq!("AAAA".parse::<WgKey>(), Err(WgKeyParseError::Length(3)));
    }

    #[test]
    fn a_psk_is_never_printed() {
        assert_eq!(format!("{:?}", Psk(WgKey([7; 32]))), "Psk(<secret>)");
    }
}
