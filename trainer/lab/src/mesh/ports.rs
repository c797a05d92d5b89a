//! Loopback ports of a lab.

use serde::{Deserialize, Serialize};

/// Loopback ports of one lab, derived from a base port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub base: u16,
    pub client_admin: u16,
    pub client_listener: u16,
    pub upstream_admin: u16,
    /// The upstream application the study's command starts (unused for an address).
    pub app: u16,
    /// The artifact server the filter fetches its models from.
    pub artifacts: u16,
}

pub const MAX_HOSTS: u32 = 64;

impl Ports {
    pub fn from_base(base: u16) -> Ports {
        Ports {
            base,
            client_admin: base,
            client_listener: base + 1,
            upstream_admin: base + 2,
            app: base + 3,
            artifacts: base + 4,
        }
    }
    /// Server-side listener of host `i`.
    pub fn host(&self, i: u32) -> u16 {
        self.base + 10 + i as u16
    }
    pub(super) fn all(&self, hosts: u32) -> Vec<(u16, String)> {
        let mut v = vec![
            (self.client_admin, "client admin".to_string()),
            (self.client_listener, "client listener".to_string()),
            (self.upstream_admin, "upstream admin".to_string()),
            (self.app, "upstream app".to_string()),
            (self.artifacts, "artifact server".to_string()),
        ];
        v.extend((0..hosts).map(|i| (self.host(i), format!("host {i} listener"))));
        v
    }
}
