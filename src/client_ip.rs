//! Which address is the client: the TCP peer, or what the proxy in front of the server says.
//!
//! A proxy header is only as trustworthy as the proxy that writes it, so exactly one source is ever
//! read (`CLIENT_IP_HEADER`), never "this header, else that one": a header the proxy does not set is
//! one the client can set. A missing or unparsable header falls back to the peer (the proxy's own
//! address), which puts such requests into one shared bucket rather than one the client picked.
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderName};

use crate::config::Config;

const FLY_CLIENT_IP: HeaderName = HeaderName::from_static("fly-client-ip");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Where the client address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIpSource {
    /// The TCP peer (no proxy, or one that is not trusted).
    Peer,
    /// A header holding exactly one address, overwritten by the proxy (`Fly-Client-IP`, `X-Real-IP`).
    Header { name: HeaderName, from_trust_proxy_headers: bool },
    /// `X-Forwarded-For`: each trusted proxy appends the address it received the request from, so
    /// the client is the entry `hops` places from the right.
    ForwardedFor { hops: usize },
}

impl ClientIpSource {
    /// CLIENT_IP_HEADER (with TRUSTED_PROXY_HOPS for X-Forwarded-For); else the older
    /// TRUST_PROXY_HEADERS=true, read as CLIENT_IP_HEADER=Fly-Client-IP; else the peer.
    pub fn from_config(c: &Config) -> ClientIpSource {
        match &c.client_ip_header {
            Some(name) if *name == X_FORWARDED_FOR => {
                ClientIpSource::ForwardedFor { hops: c.trusted_proxy_hops.max(1) as usize }
            }
            Some(name) => ClientIpSource::Header { name: name.clone(), from_trust_proxy_headers: false },
            None if c.trust_proxy_headers => {
                ClientIpSource::Header { name: FLY_CLIENT_IP, from_trust_proxy_headers: true }
            }
            None => ClientIpSource::Peer,
        }
    }

    /// Logs, once at start, what the rate limits will key on and any setting that is ignored.
    pub fn log_choice(&self, c: &Config) {
        match self {
            ClientIpSource::Peer => tracing::info!("client address: the TCP peer (CLIENT_IP_HEADER unset)"),
            ClientIpSource::Header { name, from_trust_proxy_headers } => {
                if *from_trust_proxy_headers {
                    tracing::warn!(
                        "TRUST_PROXY_HEADERS=true is read as CLIENT_IP_HEADER=Fly-Client-IP; behind a proxy other \
                         than Fly.io's set CLIENT_IP_HEADER (e.g. X-Forwarded-For) instead"
                    );
                } else if c.trust_proxy_headers {
                    tracing::info!(header = %name, "TRUST_PROXY_HEADERS is ignored: CLIENT_IP_HEADER is set");
                }
                if c.trusted_proxy_hops != 1 {
                    tracing::warn!(header = %name, "TRUSTED_PROXY_HOPS applies to X-Forwarded-For only; ignored");
                }
                tracing::info!(header = %name, "client address: from a proxy header");
            }
            ClientIpSource::ForwardedFor { hops } => {
                if c.trust_proxy_headers {
                    tracing::info!("TRUST_PROXY_HEADERS is ignored: CLIENT_IP_HEADER is set");
                }
                tracing::info!(hops, "client address: X-Forwarded-For, the entry `hops` places from the right");
            }
        }
    }

    /// The client address for a request that came from `peer`.
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        let from_header = match self {
            ClientIpSource::Peer => None,
            ClientIpSource::Header { name, from_trust_proxy_headers } => {
                let ip = single_address(headers, name);
                if ip.is_none() && *from_trust_proxy_headers && headers.contains_key(X_FORWARDED_FOR) {
                    warn_once_missing_fly_header();
                }
                ip
            }
            ClientIpSource::ForwardedFor { hops } => forwarded_for(headers, *hops),
        };
        from_header.or(peer.map(|p| p.ip())).map(|ip| ip.to_canonical())
    }
}

/// A deployment behind nginx that kept TRUST_PROXY_HEADERS=true sees every client as the proxy:
/// say so once, rather than quietly rate-limiting everyone together.
fn warn_once_missing_fly_header() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a request carried X-Forwarded-For but no Fly-Client-IP, and TRUST_PROXY_HEADERS=true reads only \
             Fly-Client-IP: requests are keyed by the proxy's address. Behind nginx or a load balancer set \
             CLIENT_IP_HEADER=X-Forwarded-For (and TRUSTED_PROXY_HOPS)"
        );
    }
}

/// The header's one address. Several header lines or a list are refused: a proxy that overwrites
/// the header leaves exactly one.
fn single_address(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_entry(value.to_str().ok()?)
}

/// The entry `hops` places from the right of X-Forwarded-For (all its lines, in order). Fewer
/// entries than hops means the request did not pass through every trusted proxy: no answer.
fn forwarded_for(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    let mut entries = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        entries.extend(value.to_str().ok()?.split(','));
    }
    let index = entries.len().checked_sub(hops)?;
    parse_entry(entries[index])
}

/// `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`, and the same with a port (some balancers add one).
fn parse_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')?.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    const PEER: &str = "192.0.2.1:40000";

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn xff(hops: usize) -> ClientIpSource {
        ClientIpSource::ForwardedFor { hops }
    }

    fn header(name: &'static str) -> ClientIpSource {
        ClientIpSource::Header { name: HeaderName::from_static(name), from_trust_proxy_headers: false }
    }

    fn client(source: &ClientIpSource, pairs: &[(&str, &str)]) -> Option<IpAddr> {
        source.client_ip(&headers(pairs), Some(PEER.parse().unwrap()))
    }

    #[test]
    fn the_peer_unless_a_header_is_configured() {
        let forged = [("x-forwarded-for", "203.0.113.9"), ("fly-client-ip", "203.0.113.8")];
        assert_eq!(client(&ClientIpSource::Peer, &forged), ip("192.0.2.1"));
        assert_eq!(ClientIpSource::Peer.client_ip(&HeaderMap::new(), None), None);
    }

    #[test]
    fn forwarded_for_ignores_spoofed_left_entries() {
        // The client sent "6.6.6.6, 7.7.7.7"; our one proxy appended the address it saw.
        let h = [("x-forwarded-for", "6.6.6.6, 7.7.7.7, 198.51.100.7")];
        assert_eq!(client(&xff(1), &h), ip("198.51.100.7"));
        // Split over several header lines, in order.
        let h = [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "7.7.7.7,198.51.100.7")];
        assert_eq!(client(&xff(1), &h), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_for_with_two_hops() {
        // CDN appends the client, the load balancer appends the CDN's address.
        let h = [("x-forwarded-for", "6.6.6.6, 198.51.100.7, 203.0.113.50")];
        assert_eq!(client(&xff(2), &h), ip("198.51.100.7"));
        assert_eq!(client(&xff(3), &h), ip("6.6.6.6"), "hops counts from the right, whatever the content");
        // Fewer entries than trusted hops: the request skipped a proxy, so nothing in it is trusted.
        assert_eq!(client(&xff(2), &[("x-forwarded-for", "198.51.100.7")]), ip("192.0.2.1"));
    }

    #[test]
    fn missing_or_garbled_headers_fall_back_to_the_peer() {
        for h in [
            &[][..],
            &[("x-forwarded-for", "")],
            &[("x-forwarded-for", "1.1.1.1, not-an-ip")],
            &[("x-forwarded-for", "1.1.1.1, unknown")],
            &[("x-forwarded-for", "1.1.1.1,")],
            &[("x-forwarded-for", "999.1.1.1")],
            &[("fly-client-ip", "198.51.100.7")],
        ] {
            assert_eq!(client(&xff(1), h), ip("192.0.2.1"), "{h:?}");
        }
        let fly = header("fly-client-ip");
        for h in [
            &[][..],
            &[("fly-client-ip", "")],
            &[("fly-client-ip", "1.1.1.1, 2.2.2.2")],
            &[("fly-client-ip", "1.1.1.1"), ("fly-client-ip", "2.2.2.2")],
            &[("fly-client-ip", "localhost")],
            &[("x-forwarded-for", "198.51.100.7")],
        ] {
            assert_eq!(client(&fly, h), ip("192.0.2.1"), "{h:?}");
        }
        let mut bad = HeaderMap::new();
        bad.insert("fly-client-ip", http::HeaderValue::from_bytes(b"1.1.1.1\xff").unwrap());
        bad.insert("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff, 1.1.1.1").unwrap());
        assert_eq!(fly.client_ip(&bad, Some(PEER.parse().unwrap())), ip("192.0.2.1"));
        assert_eq!(xff(1).client_ip(&bad, Some(PEER.parse().unwrap())), ip("192.0.2.1"));
    }

    #[test]
    fn one_header_only_never_both() {
        let both = [("fly-client-ip", "198.51.100.8"), ("x-forwarded-for", "203.0.113.9")];
        assert_eq!(client(&header("fly-client-ip"), &both), ip("198.51.100.8"));
        assert_eq!(client(&xff(1), &both), ip("203.0.113.9"));
        assert_eq!(client(&header("x-real-ip"), &both), ip("192.0.2.1"));
    }

    #[test]
    fn address_forms() {
        for (entry, want) in [
            (" 198.51.100.7 ", "198.51.100.7"),
            ("198.51.100.7:4711", "198.51.100.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
        ] {
            assert_eq!(client(&xff(1), &[("x-forwarded-for", entry)]), ip(want), "{entry}");
        }
    }

    #[test]
    fn settings() {
        let mut c = Config::defaults();
        c.client_ip_header = None;
        c.trust_proxy_headers = false;
        assert_eq!(ClientIpSource::from_config(&c), ClientIpSource::Peer);
        c.trust_proxy_headers = true;
        assert_eq!(
            ClientIpSource::from_config(&c),
            ClientIpSource::Header { name: FLY_CLIENT_IP, from_trust_proxy_headers: true },
            "the older setting means Fly-Client-IP, and only that"
        );
        c.client_ip_header = Some(HeaderName::from_static("x-forwarded-for"));
        c.trusted_proxy_hops = 2;
        assert_eq!(ClientIpSource::from_config(&c), xff(2), "CLIENT_IP_HEADER wins");
        c.client_ip_header = Some(HeaderName::from_static("x-real-ip"));
        assert_eq!(ClientIpSource::from_config(&c), header("x-real-ip"));
    }
}
