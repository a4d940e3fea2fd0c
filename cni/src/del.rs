//! DEL: weft detach, veth, address. Idempotent and tolerant of missing state: a second DEL,
//! an unknown container, a restarted weft that no longer knows the pod, and a weft that is
//! down all succeed once the veth and the address are gone.

use crate::conf::NetConf;
use crate::env::CniEnv;
use crate::error::{CniError, WEFT_REFUSED};
use crate::link::Netlink;
use crate::weft_api::{self, ApiError};
use crate::{host_ifname, release_address};

/// Runs DEL.
pub fn del(conf: &NetConf, env: &CniEnv, stdin: &[u8]) -> Result<(), CniError> {
    let host_if = host_ifname(&env.container_id, &env.ifname);
    // weft first, so it closes its socket on the veth before the veth goes.
    let refused = match weft_api::pod_del(&conf.socket, &host_if) {
        Ok(_) => None,
        Err(ApiError::Unreachable(m)) => {
            eprintln!("weft-cni: DEL {}: {m}; deleting the veth and the address anyway", env.container_id);
            None
        }
        Err(ApiError::Refused(m)) => Some(m),
    };
    // Deleting the host end removes the pod's end with it.
    Netlink::open()?.del_link(&host_if)?;
    release_address(conf, env, stdin)?;
    match refused {
        Some(m) => Err(CniError::short(WEFT_REFUSED, format!("weft pod del {host_if}: {m}"))),
        None => Ok(()),
    }
}
