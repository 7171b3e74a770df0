//! Where media may be fetched from. A media URL comes from outside (the Cloud API's media
//! endpoint, a gateway's message), so it is checked before any connection: http(s) only, a
//! host on the source's allowlist, and every address the name resolves to public (not
//! loopback, private, link-local, the cloud metadata address, or other special ranges),
//! checked on the resolved addresses themselves so a name cannot point inside. Redirects
//! stay on the same host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::MediaError;

/// The hosts one media source may send us to: exact names, or `*.example.com` for any
/// subdomain of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostAllowlist(Vec<String>);

impl HostAllowlist {
    pub fn new(patterns: &[String]) -> Self {
        HostAllowlist(patterns.iter().map(|p| p.to_ascii_lowercase()).collect())
    }

    pub fn admits(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.0
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                None => *pattern == host,
            })
    }
}

/// Checks a media URL against a source's allowlist before it is fetched.
pub fn check_url(raw: &str, hosts: &HostAllowlist, allow_private: bool) -> Result<Url, MediaError> {
    let url = Url::parse(raw).map_err(|_| forbidden("the media URL is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(forbidden("the media URL is not http(s)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(forbidden("the media URL carries credentials"));
    }
    let host = url
        .host()
        .ok_or_else(|| forbidden("the media URL has no host"))?;
    let name = match host {
        Host::Domain(name) => name.to_string(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    if !hosts.admits(&name) {
        return Err(forbidden(format!(
            "media host {name} is not on this source's allowlist"
        )));
    }
    // An address written in the URL never reaches the resolver: check it here.
    let literal = match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    };
    if let Some(ip) = literal.filter(|ip| !allow_private && !is_public(*ip)) {
        return Err(forbidden(format!("media address {ip} is not public")));
    }
    Ok(url)
}

fn forbidden(reason: impl Into<String>) -> MediaError {
    MediaError::Forbidden {
        reason: reason.into(),
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local (the
/// cloud metadata service is 169.254.169.254), shared (CGNAT), unspecified, broadcast,
/// multicast, documentation or benchmarking space, nor an IPv6 form of one of them.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // IPv4-compatible and NAT64 forms carry an IPv4 address
        || ip.to_ipv4().is_some_and(|v4| !is_public_v4(v4)))
}

/// A name that resolves only to addresses that are not public.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address")]
pub struct NotPublic(pub String);

/// The media client's resolver: the system's answers, without the addresses that are not
/// public (all of them refused: an error, not a fallback).
pub struct PublicOnlyResolver {
    pub allow_private: bool,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let admitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if admitted.is_empty() {
                return Err(Box::new(NotPublic(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

/// Redirects are followed only to the same host and scheme (at most 3), so an allowed host
/// cannot bounce the fetch elsewhere.
pub fn same_host_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let same = first.is_some_and(|first| {
            first.host_str() == attempt.url().host_str()
                && first.scheme() == attempt.url().scheme()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if same {
            attempt.follow()
        } else {
            attempt.error("a redirect to another host")
        }
    })
}

pub fn resolver(allow_private: bool) -> Arc<PublicOnlyResolver> {
    Arc::new(PublicOnlyResolver { allow_private })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
        ] {
            assert!(!is_public(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["157.240.1.1", "8.8.8.8", "2a03:2880:f003:c07:face:b00c::2"] {
            assert!(is_public(outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn allowlists_match_hosts_and_subdomains_exactly() {
        let hosts = HostAllowlist::new(&["lookaside.fbsbx.com".into(), "*.wabot.my".into()]);
        assert!(hosts.admits("lookaside.fbsbx.com"));
        assert!(hosts.admits("LOOKASIDE.fbsbx.com"));
        assert!(hosts.admits("media.wabot.my"));
        assert!(!hosts.admits("wabot.my"), "the pattern is for subdomains");
        assert!(!hosts.admits("evilwabot.my"));
        assert!(!hosts.admits("lookaside.fbsbx.com.evil.example"));
        assert!(!HostAllowlist::default().admits("lookaside.fbsbx.com"));
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let hosts = HostAllowlist::new(&["lookaside.fbsbx.com".into(), "10.0.0.5".into()]);
        check_url("https://lookaside.fbsbx.com/a?mid=1", &hosts, false).unwrap();
        for refused in [
            "file:///etc/passwd",
            "gopher://lookaside.fbsbx.com/",
            "https://user:pw@lookaside.fbsbx.com/",
            "https://example.com/x.jpg",
            "http://169.254.169.254/latest/meta-data/",
            "not a url",
        ] {
            let error = check_url(refused, &hosts, false).unwrap_err();
            assert!(matches!(error, MediaError::Forbidden { .. }), "{refused}");
        }
        // Allowed by name but private by address: refused unless private networks are allowed.
        assert!(check_url("http://10.0.0.5/x", &hosts, false).is_err());
        check_url("http://10.0.0.5/x", &hosts, true).unwrap();
    }
}
