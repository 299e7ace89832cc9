//! The SSRF guard at connect time: a resolver that refuses the addresses
//! `domain::network::is_blocked` classifies as non-public. It hands ureq only
//! addresses that passed, so the address checked is the address connected
//! to, and a DNS answer that changes between check and connect (rebinding) cannot
//! slip through.

use std::fmt;
use std::net::IpAddr;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::domain::network::is_blocked;

/// The error the resolver returns for a refused destination; recognised by
/// `blocked_address` when the call fails.
#[derive(Debug)]
pub struct Blocked(pub IpAddr);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "destination {} is not a public address", self.0)
    }
}

impl std::error::Error for Blocked {}

/// Finds a `Blocked` in a failed call's error.
pub fn blocked_address(error: &ureq::Error) -> Option<IpAddr> {
    match error {
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Blocked>())
            .map(|b| b.0),
        _ => None,
    }
}

/// Checks a resolved address list: all of it must be allowed, or nothing is.
pub fn check_addresses(addresses: &ResolvedSocketAddrs) -> Result<(), Blocked> {
    match addresses.iter().find(|a| is_blocked(a.ip())) {
        Some(address) => Err(Blocked(address.ip())),
        None => Ok(()),
    }
}

/// Resolves with the system resolver (bounded by ureq's resolve timeout), then refuses
/// the whole answer if any address is blocked, unless private networks are allowed.
#[derive(Debug, Default)]
pub struct GuardedResolver {
    inner: DefaultResolver,
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver that refuses non-public answers unless `allow_private`.
    pub fn new(allow_private: bool) -> GuardedResolver {
        GuardedResolver {
            inner: DefaultResolver::default(),
            allow_private,
        }
    }
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addresses = self.inner.resolve(uri, config, timeout)?;
        if !self.allow_private {
            check_addresses(&addresses).map_err(|b| ureq::Error::Io(std::io::Error::other(b)))?;
        }
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use ureq::Timeout;
    use ureq::unversioned::transport::time::Duration;

    fn two_seconds() -> NextTimeout {
        NextTimeout {
            after: Duration::Exact(std::time::Duration::from_secs(2)),
            reason: Timeout::Resolve,
            per_read: None,
            per_write: None,
        }
    }

    #[test]
    fn the_resolver_refuses_a_mixed_answer() {
        let mut answer = GuardedResolver::default().empty();
        answer.push("93.184.216.34:80".parse::<SocketAddr>().unwrap());
        assert!(check_addresses(&answer).is_ok());
        answer.push("10.0.0.5:80".parse::<SocketAddr>().unwrap());
        let refused = check_addresses(&answer).unwrap_err();
        assert_eq!(refused.0, "10.0.0.5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_resolver_hook_refuses_literals_and_names_without_connecting() {
        let resolver = GuardedResolver::new(false);
        let config = Config::default();
        for target in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://localhost:9/",
        ] {
            let uri: Uri = target.parse().unwrap();
            let error = resolver.resolve(&uri, &config, two_seconds()).unwrap_err();
            assert!(blocked_address(&error).is_some(), "{target}: {error}");
        }
        let open = GuardedResolver::new(true);
        let uri: Uri = "http://127.0.0.1:9/".parse().unwrap();
        assert!(open.resolve(&uri, &config, two_seconds()).is_ok());
    }
}
