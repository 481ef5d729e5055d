//! Which `Host` a request may name, and which browser `Origin` may open a WebSocket: the defence
//! against DNS rebinding. A page at `http://evil.example:18800` whose name the attacker re-points
//! at 127.0.0.1 reaches the gateway as same-origin, so neither the peer address nor an Origin
//! that merely equals the request's own Host proves anything. Both are checked against one
//! allow-list instead:
//!
//! - loopback names (`localhost`, `*.localhost`) and loopback addresses, with the bound port;
//! - the bind address with the bound port, and any IP literal when bound to all interfaces (a
//!   rebinding attack needs a name; an address cannot be re-pointed);
//! - `server.allowed_hosts`: `name`, `name:port` or `*.domain` (any port unless one is given).

use std::net::IpAddr;

/// One `server.allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    name: NamePattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(String),
    /// `*.example.net`: any name ending in `.example.net` (not the bare domain).
    Suffix(String),
    Ip(IpAddr),
}

impl HostPattern {
    /// Parses `name`, `name:port`, `*.domain`, an IP address or `[v6]:port`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(domain) = text.strip_prefix("*.") {
            let (host, port) = split_authority(domain)?;
            if matches!(host, Host::Name(_)) {
                return Some(Self {
                    name: NamePattern::Suffix(format!(".{}", host.text())),
                    port,
                });
            }
            return None;
        }
        // A bare IPv6 address has colons but no brackets.
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(Self {
                name: NamePattern::Ip(ip.to_canonical()),
                port: None,
            });
        }
        let (host, port) = split_authority(text)?;
        let name = match host {
            Host::Ip(ip) => NamePattern::Ip(ip),
            Host::Name(name) => NamePattern::Exact(name),
        };
        Some(Self { name, port })
    }

    fn matches(&self, host: &Host, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.name, host) {
            (NamePattern::Exact(want), Host::Name(name)) => want == name,
            (NamePattern::Suffix(suffix), Host::Name(name)) => name.ends_with(suffix.as_str()),
            (NamePattern::Ip(want), Host::Ip(ip)) => want == ip,
            _ => false,
        }
    }
}

/// A host as a request names it: a lower-case name without a trailing dot, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    fn text(&self) -> String {
        match self {
            Self::Name(name) => name.clone(),
            Self::Ip(ip) => ip.to_string(),
        }
    }
}

/// Splits `host[:port]` (`[v6]:port` for IPv6). `None` when it is not a valid authority.
fn split_authority(text: &str) -> Option<(Host, Option<u16>)> {
    let authority: http::uri::Authority = text.parse().ok()?;
    // No user info: `user@host` is not a Host header.
    if authority.as_str().contains('@') {
        return None;
    }
    let raw = authority.host();
    let host = match raw
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(raw)
        .parse::<IpAddr>()
    {
        Ok(ip) => Host::Ip(ip.to_canonical()),
        Err(_) => {
            let name = raw.trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            if !valid {
                return None;
            }
            Host::Name(name)
        }
    };
    let port = match authority.port() {
        Some(port) => Some(port.as_u16()),
        // `host:` with an empty port is an empty port, not a missing one.
        None if authority.as_str().ends_with(':') => return None,
        None => None,
    };
    Some((host, port))
}

/// The hosts this gateway answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    bind: IpAddr,
    port: u16,
    extra: Vec<HostPattern>,
}

impl AllowedHosts {
    /// The allow-list for a gateway bound to `bind` (`server.bind`) on `bound_port` (the real
    /// port, which differs from `server.port` when that is 0), plus `allowed_hosts`
    /// (`server.allowed_hosts`; entries that do not parse are skipped, config validation rejects
    /// them). Takes the values rather than the config so this module stays below `config`.
    pub fn new(bind: IpAddr, allowed_hosts: &[String], bound_port: u16) -> Self {
        Self {
            bind: bind.to_canonical(),
            port: bound_port,
            extra: allowed_hosts
                .iter()
                .filter_map(|h| HostPattern::parse(h))
                .collect(),
        }
    }

    /// Whether a `Host` header value (or a request URI's authority) is served. A missing port
    /// means 80, as in plain HTTP.
    pub fn allows_host(&self, value: &str) -> bool {
        match split_authority(value) {
            Some((host, port)) => self.allows(&host, port.unwrap_or(80)),
            None => false,
        }
    }

    /// Whether a browser `Origin` (`scheme://host[:port]`) may open a WebSocket: its host must
    /// be one this gateway answers to, or the origin must be listed in `allowed_origins`.
    pub fn allows_origin(&self, origin: &str, allowed_origins: &[String]) -> bool {
        let origin = origin.trim().trim_end_matches('/');
        if allowed_origins
            .iter()
            .any(|o| o.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let (default_port, rest) = if let Some(rest) = strip_prefix_ignore_case(origin, "http://") {
            (80, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(origin, "https://") {
            (443, rest)
        } else {
            // `null` (sandboxed frames, file: pages) and other schemes.
            return false;
        };
        match split_authority(rest) {
            Some((host, port)) => self.allows(&host, port.unwrap_or(default_port)),
            None => false,
        }
    }

    fn allows(&self, host: &Host, port: u16) -> bool {
        if self.extra.iter().any(|p| p.matches(host, port)) {
            return true;
        }
        if port != self.port {
            return false;
        }
        match host {
            Host::Name(name) => name == "localhost" || name.ends_with(".localhost"),
            Host::Ip(ip) => ip.is_loopback() || *ip == self.bind || self.bind.is_unspecified(),
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(bind: &str, port: u16, extra: &[&str]) -> AllowedHosts {
        let bind = bind.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        AllowedHosts::new(bind, &extra, port)
    }

    #[test]
    fn loopback_names_and_addresses_with_the_bound_port() {
        let a = allowed("127.0.0.1", 18800, &[]);
        for ok in [
            "127.0.0.1:18800",
            "localhost:18800",
            "LOCALHOST.:18800",
            "app.localhost:18800",
            "[::1]:18800",
            "[::ffff:127.0.0.1]:18800",
            "127.0.0.2:18800",
        ] {
            assert!(a.allows_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:18800",
            "127.0.0.1:18801",
            "localhost",
            "localhost.evil.example:18800",
            "10.0.0.5:18800",
            "",
            "user@localhost:18800",
            "localhost:",
            "local host:18800",
        ] {
            assert!(!a.allows_host(bad), "{bad}");
        }
    }

    #[test]
    fn bind_address_and_configured_hosts() {
        let a = allowed(
            "10.0.0.5",
            443,
            &["gw.tail1234.ts.net", "*.example.net:8443"],
        );
        assert!(a.allows_host("10.0.0.5:443"));
        assert!(!a.allows_host("10.0.0.6:443"));
        assert!(a.allows_host("gw.tail1234.ts.net"));
        assert!(a.allows_host("GW.tail1234.ts.net:9999"));
        assert!(a.allows_host("a.example.net:8443"));
        assert!(!a.allows_host("example.net:8443"));
        assert!(!a.allows_host("a.example.net:443"));
        let any = allowed("0.0.0.0", 18800, &[]);
        assert!(any.allows_host("192.168.1.20:18800"));
        assert!(!any.allows_host("evil.example:18800"));
    }

    #[test]
    fn origins_are_checked_against_the_list_never_the_request_host() {
        let a = allowed("127.0.0.1", 18800, &[]);
        let extra = vec!["https://app.example/".to_owned()];
        assert!(a.allows_origin("http://127.0.0.1:18800", &extra));
        assert!(a.allows_origin("http://localhost:18800/", &extra));
        assert!(a.allows_origin("https://app.example", &extra));
        assert!(!a.allows_origin("http://evil.example:18800", &extra));
        assert!(!a.allows_origin("http://localhost:3000", &extra));
        assert!(!a.allows_origin("null", &extra));
        assert!(!a.allows_origin("file://", &extra));
    }

    #[test]
    fn patterns_parse_or_say_no() {
        for ok in [
            "gw.example",
            "gw.example:8443",
            "*.example",
            "10.1.2.3",
            "::1",
            "[::1]:80",
        ] {
            assert!(HostPattern::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "*.", "http://x", "a b", "*.10.0.0.1"] {
            assert!(HostPattern::parse(bad).is_none(), "{bad}");
        }
    }
}
