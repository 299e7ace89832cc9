//! The address classifier: which IP addresses an outbound call may never reach.
//!
//! The check runs on parsed `IpAddr`s, so every spelling of an address (`2130706433`,
//! `0x7f.1`, `127.1`, `[::ffff:127.0.0.1]`) is judged by what it is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is somewhere an action must not go: anything that is not a public
/// unicast address.
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()            // 0.0.0.0
        || a == 0                  // 0.0.0.0/8 "this network"
        || ip.is_loopback()        // 127.0.0.0/8
        || ip.is_private()         // 10/8, 172.16/12, 192.168/16
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 CGNAT
        || ip.is_link_local()      // 169.254.0.0/16 (cloud metadata lives here)
        || (a == 192 && b == 0 && c == 0)       // 192.0.0.0/24 IETF protocol assignments
        || ip.is_documentation()   // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b == 18 || b == 19))   // 198.18.0.0/15 benchmarking
        || (a == 192 && b == 88 && c == 99)     // 192.88.99.0/24 6to4 relay anycast
        || ip.is_multicast()       // 224.0.0.0/4
        || a >= 240 // 240.0.0.0/4 reserved, 255.255.255.255 broadcast
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // IPv6 forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = embedded_v4(ip) {
        return is_blocked_v4(v4);
    }
    // ::/96, IPv4-compatible addresses: deprecated, never a real destination.
    if segments[..6] == [0; 6] {
        return true;
    }
    ip.is_unspecified()                               // ::
        || ip.is_loopback()                           // ::1
        // outside 2000::/3 global unicast: ULA fc00::/7, link-local fe80::/10,
        // multicast ff00::/8, NAT64 local-use 64:ff9b:1::/48, discard 100::/64, ...
        || segments[0] & 0xe000 != 0x2000
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // 2001:db8::/32 documentation
        || (segments[0] & 0xfff0 == 0x3ff0)           // 3fff::/20 documentation
        || (segments[0] == 0x2001 && segments[1] < 0x0200) // 2001::/23 IETF special (Teredo, benchmarking, ORCHID)
}

/// The IPv4 address inside IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`)
/// and 6to4 (`2002:aabb:ccdd::`) addresses.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(text: &str) -> bool {
        is_blocked(text.parse().unwrap())
    }

    #[test]
    fn private_and_special_ipv4_are_blocked() {
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "192.0.0.170",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "192.88.99.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(blocked(address), "{address} should be blocked");
        }
    }

    #[test]
    fn public_ipv4_is_allowed() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
        ] {
            assert!(!blocked(address), "{address} should be allowed");
        }
    }

    #[test]
    fn special_ipv6_is_blocked() {
        for address in [
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "fec0::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(blocked(address), "{address} should be blocked");
        }
    }

    #[test]
    fn public_ipv6_is_allowed() {
        for address in [
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!blocked(address), "{address} should be allowed");
        }
    }

    #[test]
    fn odd_ipv4_spellings_parse_to_loopback() {
        // The URL parser turns these into the address they name; the guard sees that.
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
        ] {
            let parsed = url::Url::parse(url).unwrap();
            let Some(url::Host::Ipv4(ip)) = parsed.host() else {
                panic!("{url} did not parse to an IPv4 host");
            };
            assert!(is_blocked(IpAddr::V4(ip)), "{url}");
        }
    }
}
