//! Which policy istiod puts on the target's cluster: several rules for one host merged
//! (first-wins), the port's `portLevelSettings` entry, then the target subset's own policy, each
//! as istiod does it (citations at istio/istio@86c9f01f; notes in docs/istiod-reading.md).

use super::schema::{ConnectionPool, Doc, LoadBalancer, OutlierDetection, Subset, Tls, TrafficPolicy};
use anyhow::{bail, Result};

/// A DestinationRule of the file, with where it is (`document 2 (line 30) `, or empty).
pub(super) struct Found {
    pub at: String,
    pub doc: Doc,
}

impl Found {
    fn label(&self) -> String {
        format!("{}{}", self.at, self.doc.metadata.name)
    }
}

/// One block of the policy in force, with its YAML path.
pub(super) type Block<'a, T> = Option<(&'a T, String)>;

/// The merged subsets, each with its YAML path.
pub(super) type Subsets<'a> = Vec<(&'a Subset, String)>;

/// The four blocks istiod applies to the target's cluster, and what the choice set aside.
#[derive(Default)]
pub(super) struct InForce<'a> {
    pub pool: Block<'a, ConnectionPool>,
    pub outlier: Block<'a, OutlierDetection>,
    pub lb: Block<'a, LoadBalancer>,
    pub tls: Block<'a, Tls>,
    /// What istiod ignores or replaces, as sentences starting with a YAML path.
    pub notes: Vec<String>,
}

/// The rules for one host in the order istiod merges them: with a workloadSelector first, then
/// by creationTimestamp, name and namespace (pilot/pkg/model/push_context.go:2040-2060). Rules
/// not yet created (no timestamp) sort after created ones, among themselves by name (a
/// `kubectl apply` of one file creates them within the same second); the sort is stable.
pub(super) fn istiod_order(rules: &mut [Found]) {
    rules.sort_by(|a, b| {
        let key = |f: &Found| {
            let m = &f.doc.metadata;
            let ts = m.creation_timestamp.as_ref().and_then(|t| t.as_str().map(str::to_string));
            (f.doc.spec.workload_selector.is_none(), ts.is_none(), ts, m.name.clone(), m.namespace.clone())
        };
        key(a).cmp(&key(b))
    });
}

/// The merged rule's top-level policy and subsets (pilot/pkg/model/destination_rule.go:46-146):
/// the first rule with a `trafficPolicy` gives it whole and the others' are ignored (:126-128);
/// subsets are concatenated by name, the first of a name winning (:99-117). Rules whose
/// `exportTo` or `workloadSelector` differ are not merged by istiod (:62-90): which applies
/// depends on the client, so they are refused.
pub(super) fn merge<'a>(
    rules: &'a [Found],
    origin: &str,
    notes: &mut Vec<String>,
) -> Result<(Block<'a, TrafficPolicy>, Subsets<'a>)> {
    let first = &rules[0];
    for r in &rules[1..] {
        let same = |a: &Doc, b: &Doc| {
            serde_json::to_value(&a.spec.export_to).ok() == serde_json::to_value(&b.spec.export_to).ok()
                && serde_json::to_value(&a.spec.workload_selector).ok()
                    == serde_json::to_value(&b.spec.workload_selector).ok()
        };
        if !same(&first.doc, &r.doc) {
            bail!(
                "{origin}: DestinationRules {} and {} for the target differ in exportTo or workloadSelector: istiod keeps them apart (pilot/pkg/model/destination_rule.go:62-90) and which applies depends on the client; keep one",
                first.label(),
                r.label()
            );
        }
    }
    let prefix = |r: &Found| format!("{}spec", r.at);
    let mut policy: Block<TrafficPolicy> = None;
    let mut subsets: Vec<(&Subset, String)> = Vec::new();
    for r in rules {
        if let Some(p) = &r.doc.spec.traffic_policy {
            match &policy {
                None => policy = Some((p, format!("{}.trafficPolicy", prefix(r)))),
                Some((_, from)) => notes.push(format!(
                    "{}.trafficPolicy: ignored, istiod keeps the first rule's ({from}; pilot/pkg/model/destination_rule.go:126-128)",
                    prefix(r)
                )),
            }
        }
        for (i, s) in r.doc.spec.subsets.iter().flatten().enumerate() {
            let here = format!("{}.subsets[{i}]", prefix(r));
            match subsets.iter().find(|(t, _)| t.name == s.name) {
                None => subsets.push((s, here)),
                Some((_, from)) => notes.push(format!(
                    "{here}: subset {:?} ignored, {from} defines it first (pilot/pkg/model/destination_rule.go:99-117)",
                    s.name
                )),
            }
        }
    }
    Ok((policy, subsets))
}

/// The blocks of `p` for `port`: its `portLevelSettings` entry for the port, taken whole with
/// its unset blocks unset, or else the policy's own (pilot/pkg/networking/util/util.go:865-889,
/// first match wins). The flag says whether an entry was taken.
fn at_port<'a>(p: &'a TrafficPolicy, path: &str, port: Option<u16>) -> (InForce<'a>, bool) {
    let entry = port.and_then(|n| {
        p.port_level_settings
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, l)| l.port.as_ref().is_some_and(|s| s.number == u32::from(n)))
    });
    match entry {
        Some((i, l)) => {
            let at = format!("{path}.portLevelSettings[{i}]");
            let f = InForce {
                pool: with(&l.connection_pool, &at, "connectionPool"),
                outlier: with(&l.outlier_detection, &at, "outlierDetection"),
                lb: with(&l.load_balancer, &at, "loadBalancer"),
                tls: with(&l.tls, &at, "tls"),
                notes: vec![format!(
                    "{path}.portLevelSettings: entry {i} (port {}) is the policy in force; the top-level blocks and the other entries do not apply",
                    port.unwrap_or(0)
                )],
            };
            (f, true)
        }
        None => {
            let f = InForce {
                pool: with(&p.connection_pool, path, "connectionPool"),
                outlier: with(&p.outlier_detection, path, "outlierDetection"),
                lb: with(&p.load_balancer, path, "loadBalancer"),
                tls: with(&p.tls, path, "tls"),
                notes: Vec::new(),
            };
            (f, false)
        }
    }
}

fn with<'a, T>(v: &'a Option<T>, at: &str, name: &str) -> Block<'a, T> {
    v.as_ref().map(|b| (b, format!("{at}.{name}")))
}

/// The policy on the target's cluster: the merged top-level policy at the port, then for a
/// subset target its own policy merged in (pilot/pkg/networking/util/util.go:893-909 and
/// pilot/pkg/model/destination_rule.go:179-202): a subset block replaces the top-level block
/// whole, and a subset's entry for the port replaces all four, unset ones included.
pub(super) fn in_force<'a>(
    policy: Block<'a, TrafficPolicy>,
    subsets: &[(&'a Subset, String)],
    port: Option<u16>,
    subset: Option<&str>,
    origin: &str,
) -> Result<InForce<'a>> {
    let mut f = match policy {
        Some((p, path)) => at_port(p, &path, port).0,
        None => InForce::default(),
    };
    let Some(name) = subset else { return Ok(f) };
    let Some((s, at)) = subsets.iter().find(|(s, _)| s.name == name) else {
        let names: Vec<&str> = subsets.iter().map(|(s, _)| s.name.as_str()).collect();
        bail!(
            "{origin}: no subset {name:?} in the target's DestinationRule (it has {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        );
    };
    let Some(sp) = &s.traffic_policy else { return Ok(f) };
    let (mine, whole) = at_port(sp, &format!("{at}.trafficPolicy"), port);
    f.notes.extend(mine.notes);
    let why = format!("for subset {name:?}");
    let entry = format!("{at}'s port entry");
    swap(&mut f.pool, mine.pool, whole, &why, &entry, &mut f.notes);
    swap(&mut f.outlier, mine.outlier, whole, &why, &entry, &mut f.notes);
    swap(&mut f.lb, mine.lb, whole, &why, &entry, &mut f.notes);
    swap(&mut f.tls, mine.tls, whole, &why, &entry, &mut f.notes);
    Ok(f)
}

/// Puts a subset's block in force: when it is set, or always when it comes from the subset's
/// entry for the port (`whole`); notes the block it replaces.
fn swap<'a, T>(
    old: &mut Block<'a, T>,
    new: Block<'a, T>,
    whole: bool,
    why: &str,
    entry: &str,
    notes: &mut Vec<String>,
) {
    if !whole && new.is_none() {
        return;
    }
    if let Some((_, o)) = old {
        let by = new.as_ref().map(|(_, p)| p.clone()).unwrap_or_else(|| format!("{entry}, which leaves it unset"));
        notes.push(format!("{o}: not in force {why}, {by} replaces it (pilot/pkg/networking/util/util.go:893-909)"));
    }
    *old = new;
}
