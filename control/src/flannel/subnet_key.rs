//! `<prefix>/subnets/10.244.1.0-24`: the subnet part of a lease key.

use ipnet::Ipv4Net;

/// The key suffix flannel uses for `subnet` (`10.244.1.0-24`).
pub fn subnet_key(subnet: Ipv4Net) -> String {
    format!("{}-{}", subnet.network(), subnet.prefix_len())
}

/// Parses the last path component of a lease key (`…/10.244.1.0-24`).
/// Returns `None` for keys that are not flannel IPv4 subnet leases (for
/// example flannel's dual-stack `10.244.1.0-24&fc00::-64` keys are read
/// for their IPv4 part only).
pub fn parse_subnet_key(key: &str) -> Option<Ipv4Net> {
    let last = key.rsplit('/').next()?;
    let v4 = last.split('&').next()?;
    let (addr, len) = v4.split_once('-')?;
    let net = Ipv4Net::new(addr.parse().ok()?, len.parse().ok()?).ok()?;
    // flannel only writes network addresses; anything else is not a lease.
    (net.trunc() == net).then_some(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_key_round_trips() {
        let net: Ipv4Net = "10.244.1.0/24".parse().unwrap();
        assert_eq!(subnet_key(net), "10.244.1.0-24");
        assert_eq!(parse_subnet_key("/coreos.com/network/subnets/10.244.1.0-24"), Some(net));
    }

    #[test]
    fn keys_that_are_not_subnets_are_skipped() {
        for bad in [
            "/x/subnets/10.244.1.1-24",
            "/x/subnets/junk",
            "/x/subnets/10.244.1.0-33",
            "/x/subnets/10.244.1.0",
        ] {
            assert_eq!(parse_subnet_key(bad), None, "{bad}");
        }
    }
}
