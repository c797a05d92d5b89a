//! The upstream side of a study's lab: the hosts, the failure modes the server sidecars give
//! them (data/README.md, "Failure modes per profile"), and the upstream application itself.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How a bad host fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadMode {
    /// The host's server-side fault filter aborts with 503 (fast: no call to the app).
    #[default]
    FaultAbort,
    /// The app serves the request, then the host's sidecar answers 503 in place of its answer
    /// (Envoy's Lua filter on the response): a bad request costs what a good one does, so
    /// least-request balancing does not favour bad hosts. Works with any upstream.
    App503,
}

/// The upstream side of the lab for one study: how many hosts the cluster has and which
/// faults they inject (a real Envoy fault filter on each host's server-side listener).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabTopology {
    /// Hosts (endpoints) of the client-side cluster.
    pub hosts: u32,
    /// How many of them are "bad": they abort with 503 at `bad_abort_percent`.
    pub bad_hosts: u32,
    pub bad_abort_percent: f64,
    #[serde(default)]
    pub bad_mode: BadMode,
    /// Fixed delay every host adds to `delay_percent` of its requests.
    pub delay_ms: u32,
    pub delay_percent: f64,
    /// Worker threads of the client-side sidecar (Istio default: 2).
    pub client_workers: u32,
    /// A request quota per client (load test) on some hosts (see [`Quota`]); none when absent.
    #[serde(default)]
    pub client_quota: Option<Quota>,
    /// A request quota per connection on some hosts: each new connection gets a full bucket.
    #[serde(default)]
    pub conn_quota: Option<Quota>,
    /// A fixed worker capacity on some hosts (see [`Capacity`]); none when absent.
    #[serde(default)]
    pub capacity: Option<Capacity>,
}

/// A host that serves a budget of requests and then fails fast with 503 until the budget
/// refills: an upstream that grants each client a quota (as rate-limited APIs do per API key;
/// each load test is a new client, named by its run header), or a per-connection resource that
/// runs out (each new connection starts with a full budget). Envoy's local rate limit on the
/// server sidecar: a token bucket of `tokens`, refilled at `refill_per_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    /// The first `hosts` hosts have the quota.
    pub hosts: u32,
    pub tokens: u32,
    pub refill_per_s: u32,
}

/// A host with a fixed number of workers: `concurrency` requests in service, `queue` more
/// waiting, any beyond answered 503 at once (a server-side circuit breaker in front of the
/// app, as a bounded thread pool with a bounded accept queue behaves).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The first `hosts` hosts have the limit.
    pub hosts: u32,
    pub concurrency: u32,
    pub queue: u32,
}

/// An HTTP readiness probe: `GET path` answers `status` within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub path: String,
    pub status: u16,
    pub timeout_ms: u64,
}

/// The application the server sidecars forward to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upstream {
    /// A command the lab starts, one process for all hosts, listening on loopback. `files` are
    /// written into the upstream's own directory first (its configuration, pages it serves).
    /// `version` is a command whose first line of output names what ran (dataset metadata).
    /// Arguments and file contents take the [`Places`] placeholders.
    Command {
        argv: Vec<String>,
        ready: Ready,
        version: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<UpstreamAsset>,
    },
    /// A service already running at `IP:PORT`; the lab only probes it.
    Address { address: String, ready: Ready },
}

/// A file the lab writes into the upstream's directory before starting it (`path` is relative
/// to that directory; `content` takes the [`Places`] placeholders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamAsset {
    pub path: String,
    pub content: String,
}

/// What the placeholders of an upstream command stand for: `{port}` the port the lab gives it,
/// `{venv}` the lab's Python venv, `{dir}` the upstream's own directory (absolute; its files,
/// logs and scratch space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    pub port: u16,
    pub venv: String,
    pub dir: String,
}

/// The placeholders [`Places::fill`] knows.
pub const PLACEHOLDERS: [&str; 3] = ["{port}", "{venv}", "{dir}"];

impl Places {
    /// `text` with every placeholder filled in.
    pub fn fill(&self, text: &str) -> String {
        text.replace("{port}", &self.port.to_string()).replace("{venv}", &self.venv).replace("{dir}", &self.dir)
    }
}

impl Upstream {
    pub fn ready(&self) -> &Ready {
        match self {
            Upstream::Command { ready, .. } | Upstream::Address { ready, .. } => ready,
        }
    }

    /// The command line with its placeholders filled in (commands only).
    pub fn argv(&self, places: &Places) -> Option<Vec<String>> {
        match self {
            Upstream::Command { argv, .. } => Some(argv.iter().map(|a| places.fill(a)).collect()),
            Upstream::Address { .. } => None,
        }
    }

    /// The version command with its placeholders filled in (commands that have one).
    pub fn version(&self, places: &Places) -> Option<Vec<String>> {
        match self {
            Upstream::Command { version: Some(v), .. } => Some(v.iter().map(|a| places.fill(a)).collect()),
            _ => None,
        }
    }

    /// The files to write before starting the command, `(relative path, content)` filled in.
    pub fn files(&self, places: &Places) -> Vec<(String, String)> {
        match self {
            Upstream::Command { files, .. } => {
                files.iter().map(|f| (f.path.clone(), places.fill(&f.content))).collect()
            }
            Upstream::Address { .. } => Vec::new(),
        }
    }
}

fn fields<const N: usize>(s: &str, what: &str, form: &str) -> Result<[u32; N], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != N {
        return Err(format!("{what} {s:?}: expected {form}"));
    }
    let mut out = [0; N];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p.trim().parse().map_err(|_| format!("{what} {s:?}: {p:?} is not a whole number ({form})"))?;
    }
    Ok(out)
}

impl FromStr for Quota {
    type Err = String;
    /// `HOSTS:TOKENS:REFILL_PER_S`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let [hosts, tokens, refill_per_s] = fields::<3>(s, "quota", "HOSTS:TOKENS:REFILL_PER_S, e.g. 2:50:100")?;
        if tokens == 0 {
            return Err(format!("quota {s:?}: TOKENS must be >= 1"));
        }
        Ok(Quota { hosts, tokens, refill_per_s })
    }
}

impl FromStr for Capacity {
    type Err = String;
    /// `HOSTS:CONCURRENCY:QUEUE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let [hosts, concurrency, queue] = fields::<3>(s, "capacity", "HOSTS:CONCURRENCY:QUEUE, e.g. 3:4:2")?;
        if concurrency == 0 {
            return Err(format!("capacity {s:?}: CONCURRENCY must be >= 1"));
        }
        Ok(Capacity { hosts, concurrency, queue })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_commands_get_their_port_venv_and_dir() {
        let ready = Ready { path: "/".into(), status: 200, timeout_ms: 1000 };
        let u = Upstream::Command {
            argv: vec![
                "{venv}/bin/gunicorn".into(),
                "-b".into(),
                "127.0.0.1:{port}".into(),
                "-c".into(),
                "{dir}/c".into(),
            ],
            ready: ready.clone(),
            version: Some(vec!["{venv}/bin/gunicorn".into(), "--version".into()]),
            files: vec![UpstreamAsset { path: "c".into(), content: "listen {port}; root {dir}; {other}".into() }],
        };
        let at = Places { port: 8000, venv: "/v".into(), dir: "/lab/app".into() };
        assert_eq!(u.argv(&at).unwrap(), ["/v/bin/gunicorn", "-b", "127.0.0.1:8000", "-c", "/lab/app/c"]);
        assert_eq!(u.version(&at).unwrap(), ["/v/bin/gunicorn", "--version"]);
        // Unknown braces are left as they are (nginx and shell configurations use them).
        assert_eq!(u.files(&at), [("c".to_string(), "listen 8000; root /lab/app; {other}".to_string())]);
        let addr = Upstream::Address { address: "127.0.0.1:80".into(), ready };
        assert!(addr.argv(&at).is_none() && addr.version(&at).is_none() && addr.files(&at).is_empty());
    }

    #[test]
    fn quota_and_capacity_parse_with_named_errors() {
        let q: Quota = "2:20:5".parse().unwrap();
        assert_eq!(q, Quota { hosts: 2, tokens: 20, refill_per_s: 5 });
        assert!("2:20".parse::<Quota>().unwrap_err().contains("expected"));
        assert!("2:x:5".parse::<Quota>().unwrap_err().contains("\"x\""));
        assert!("2:0:5".parse::<Quota>().is_err());
        let c: Capacity = "3:4:2".parse().unwrap();
        assert_eq!(c, Capacity { hosts: 3, concurrency: 4, queue: 2 });
        assert!("3:0:2".parse::<Capacity>().is_err());
        assert!("3:4".parse::<Capacity>().is_err());
    }
}
