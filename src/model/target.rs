//! Where a node's sshd listens, written the ways ssh and its files want:
//! `host:port` for `-J` and messages, `[v6]:port` for an IPv6 address, and
//! the port left out where 22 goes without saying. One type, so that no
//! caller brackets (or forgets to bracket) an IPv6 address by hand.

use std::fmt;

/// A node's address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshTarget<'a> {
    pub addr: &'a str,
    pub port: u16,
}

impl<'a> SshTarget<'a> {
    pub fn new(addr: &'a str, port: u16) -> SshTarget<'a> {
        SshTarget { addr, port }
    }

    /// The host part: an IPv6 address in brackets, anything else as is.
    pub fn host(&self) -> String {
        if self.addr.contains(':') {
            format!("[{}]", self.addr)
        } else {
            self.addr.to_string()
        }
    }

    /// `host` alone on port 22, else `host:port` (how a person names it).
    pub fn short(&self) -> String {
        if self.port == 22 {
            self.host()
        } else {
            self.to_string()
        }
    }
}

/// `host:port`, always with the port.
impl fmt::Display for SshTarget<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host(), self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_bracketed_everywhere() {
        let v6 = SshTarget::new("fd00::5", 2222);
        assert_eq!(v6.to_string(), "[fd00::5]:2222");
        assert_eq!(v6.short(), "[fd00::5]:2222");
        assert_eq!(SshTarget::new("fd00::5", 22).short(), "[fd00::5]");
        let v4 = SshTarget::new("10.0.0.1", 22);
        assert_eq!(v4.to_string(), "10.0.0.1:22");
        assert_eq!(v4.short(), "10.0.0.1");
        assert_eq!(SshTarget::new("node1", 2200).short(), "node1:2200");
    }

    #[test]
    fn a_node_gives_its_target_in_one_place() {
        let inv = crate::model::inventory::Inventory::from_str_named(
            "t.yaml",
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: 'fd00::5', port: 2222}\n  - {name: b, address: 10.0.0.2}\n",
        )
        .unwrap();
        let t = |name: &str| inv.nodes[inv.find(name).unwrap()].target();
        assert_eq!(t("a"), SshTarget::new("fd00::5", 2222));
        assert_eq!(t("a").to_string(), "[fd00::5]:2222");
        assert_eq!(t("b").short(), "10.0.0.2");
        // The manager without an address: empty, as every caller had it.
        assert_eq!(t("m"), SshTarget::new("", 22));
    }
}
