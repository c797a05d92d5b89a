//! The explorer's loopback HTTP server (`sfr2l explore`): std only, GET/HEAD, one short-lived
//! thread per connection, at most [`MAX_CONNECTIONS`] at once (`listener`). It serves the page
//! (compiled in), the wasm-bindgen output, the policies and data folders read-only (a path that
//! leaves its folder is refused), and the lab's trace records after the same check as `traces
//! ingest` (`traces`). Inference runs in the browser: the server never loads a model.

use std::path::{Component, Path, PathBuf};

const INDEX_HTML: &str = include_str!("../../../explorer/www/index.html");
const APP_JS: &str = include_str!("../../../explorer/www/app.js");
const STYLE_CSS: &str = include_str!("../../../explorer/www/style.css");

/// What the server shows.
#[derive(Debug, Clone)]
pub struct Site {
    /// wasm-bindgen `--target web` output (sfr2l_explorer.js, sfr2l_explorer_bg.wasm).
    pub pkg: PathBuf,
    pub policies: PathBuf,
    pub data: PathBuf,
    /// A lab working directory whose client sidecar log holds live trace records.
    pub lab: PathBuf,
    /// The plugin's `trace_key`: with it only records whose MAC verifies are shown.
    pub trace_key: Option<Vec<u8>>,
}

/// A response: status, content type, body.
pub type Reply = (u16, &'static str, Vec<u8>);

fn text(status: u16, msg: &str) -> Reply {
    (status, "text/plain; charset=utf-8", msg.as_bytes().to_vec())
}

/// Percent-decodes a URL path; `None` for malformed escapes or non-UTF-8.
fn decode(path: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where a request path lands under a served folder.
#[derive(Debug, PartialEq)]
pub enum Confined {
    Inside(PathBuf),
    Missing,
    /// It could leave the folder: `..`, `.`, a root, a backslash, NUL, a hidden name, or a
    /// link that resolves outside.
    Refused,
}

/// `rel` under `root`: only plain components, and the resolved file must still lie under it.
pub fn confine(root: &Path, rel: &str) -> Confined {
    if rel.is_empty() || rel.contains('\\') || rel.contains('\0') {
        return Confined::Refused;
    }
    let mut p = root.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) if !s.to_string_lossy().starts_with('.') => p.push(s),
            _ => return Confined::Refused,
        }
    }
    let (Ok(real), Ok(base)) = (p.canonicalize(), root.canonicalize()) else { return Confined::Missing };
    if real.starts_with(&base) {
        Confined::Inside(real)
    } else {
        Confined::Refused
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "json" => "application/json",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "csv" | "md" | "txt" => "text/plain; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn file(root: &Path, rel: &str) -> Reply {
    match confine(root, rel) {
        Confined::Inside(p) if p.is_file() => match std::fs::read(&p) {
            Ok(b) => (200, content_type(&p), b),
            Err(e) => text(500, &format!("reading {rel}: {e}")),
        },
        Confined::Inside(_) | Confined::Missing => text(404, &format!("{rel}: not found")),
        Confined::Refused => text(403, &format!("{rel}: refused (outside the served folder)")),
    }
}

/// `policies/index.json`: the simulators (`sN/simulator.onnx` + card) and agents
/// (`sN/agents/<configuration>/seed-S/<thread|call>.onnx` + card) found under the folder.
/// The agents' action grids of the simulator in `dir`: its card's study reference (cards since
/// studies), else those of the study named like the folder (`studies/<name>.yaml` or built in).
fn study_grids(dir: &Path, name: &str) -> anyhow::Result<serde_json::Value> {
    let card: Option<sfr2l_core::card::SimulatorCard> =
        std::fs::read_to_string(dir.join("simulator.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    if let Some(s) = card.and_then(|c| c.study) {
        return Ok(serde_json::json!({ "thread_grid": s.thread_grid, "call_grid": s.call_grid }));
    }
    let s = sfr2l_files::study::find(name)?.study;
    Ok(serde_json::json!({ "thread_grid": s.thread_grid.values(), "call_grid": s.call_grid.values() }))
}

pub fn listing(policies: &Path) -> serde_json::Value {
    let mut sims = Vec::new();
    let dirs = |p: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let name = |p: &Path| p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    for sdir in dirs(policies) {
        if !sdir.join("simulator.onnx").is_file() {
            continue;
        }
        let mut agents = Vec::new();
        for cdir in dirs(&sdir.join("agents")) {
            for seed in dirs(&cdir) {
                let kinds: Vec<&str> =
                    ["thread", "call"].into_iter().filter(|k| seed.join(format!("{k}.onnx")).is_file()).collect();
                if !kinds.is_empty() {
                    agents.push(serde_json::json!({
                        "configuration": name(&cdir), "seed": name(&seed),
                        "path": format!("{}/agents/{}/{}", name(&sdir), name(&cdir), name(&seed)), "agents": kinds,
                    }));
                }
            }
        }
        let (grids, grids_error) = match study_grids(&sdir, &name(&sdir)) {
            Ok(g) => (g, serde_json::Value::Null),
            Err(e) => (serde_json::Value::Null, format!("{e:#}").into()),
        };
        sims.push(serde_json::json!({
            "name": name(&sdir), "card": sdir.join("simulator.json").is_file(), "agents": agents,
            "grids": grids, "grids_error": grids_error,
        }));
    }
    serde_json::json!({ "simulators": sims })
}

/// Answers one request path.
pub fn route(site: &Site, path: &str) -> Reply {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let Some(path) = decode(path) else { return text(400, "malformed path") };
    match path.as_str() {
        "/" | "/index.html" => (200, "text/html; charset=utf-8", INDEX_HTML.as_bytes().to_vec()),
        "/app.js" => (200, "text/javascript; charset=utf-8", APP_JS.as_bytes().to_vec()),
        "/style.css" => (200, "text/css; charset=utf-8", STYLE_CSS.as_bytes().to_vec()),
        "/policies/index.json" => (200, "application/json", listing(&site.policies).to_string().into_bytes()),
        "/api/traces" => traces(&site.lab, site.trace_key.as_deref()),
        p => {
            if let Some(rel) = p.strip_prefix("/policies/") {
                file(&site.policies, rel)
            } else if let Some(rel) = p.strip_prefix("/data/") {
                file(&site.data, rel)
            } else if let Some(rel) = p.strip_prefix("/pkg/") {
                file(&site.pkg, rel)
            } else {
                text(404, &format!("{p}: not found"))
            }
        }
    }
}

mod listener;
mod traces;
pub use listener::{serve, MAX_CONNECTIONS};
use traces::traces;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused_and_files_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("policies");
        std::fs::create_dir_all(root.join("s1")).unwrap();
        std::fs::write(root.join("s1/simulator.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        let site = Site {
            pkg: dir.path().join("pkg"),
            policies: root.clone(),
            data: root.clone(),
            lab: root,
            trace_key: None,
        };
        assert_eq!(route(&site, "/policies/s1/simulator.json").0, 200);
        for bad in ["/policies/../secret", "/policies/%2e%2e/secret", "/policies/s1/../../secret", "/policies/.hidden"]
        {
            assert_eq!(route(&site, bad).0, 403, "{bad}");
        }
        assert_eq!(route(&site, "/policies/%2Fetc%2Fpasswd").0, 403);
        assert_eq!(route(&site, "/policies/nope.json").0, 404);
        assert_eq!(route(&site, "/policies/%zz").0, 400);
        assert_eq!(route(&site, "/").0, 200);
    }
}
