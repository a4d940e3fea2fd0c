//! `[exception]`: how traffic the engine does not forward (pod -> anywhere
//! outside the pod network) is handed to the host kernel.

use serde::Deserialize;

use super::ConfigError;
use super::uplink::check_ifname;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawException {
    interface: Option<String>,
}

/// `[exception]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExceptionSection {
    /// `exception.interface`: a host-side interface (tap/veth) the engine
    /// writes exception frames to, so the kernel routes them. `None`: such
    /// frames are dropped and counted.
    pub interface: Option<String>,
}

pub(super) fn validate(raw: RawException) -> Result<ExceptionSection, ConfigError> {
    if let Some(name) = &raw.interface {
        check_ifname("exception.interface", name)?;
    }
    Ok(ExceptionSection { interface: raw.interface })
}
