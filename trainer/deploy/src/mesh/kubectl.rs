//! The thin layer over a cluster: every call is one `kubectl` command line, built by
//! [`Kubectl::args`] (tested offline) and run with a time limit; output parsing lives in
//! [`super::backend`] and is tested on recorded outputs.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `kubectl` aimed at one context and namespace.
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub bin: String,
    pub context: String,
    pub namespace: String,
}

impl Kubectl {
    pub fn new(context: &str, namespace: &str) -> Self {
        Self { bin: "kubectl".into(), context: context.into(), namespace: namespace.into() }
    }

    /// The command line for `rest`: the context and namespace always explicit.
    pub fn args(&self, rest: &[&str]) -> Vec<String> {
        let mut v = vec!["--context".to_string(), self.context.clone(), "-n".into(), self.namespace.clone()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }

    /// Runs `kubectl ARGS` (stdin from `input`) within `limit`; its stdout, or an error with the
    /// command line and its stderr.
    pub fn run(&self, rest: &[&str], input: Option<&str>, limit: Duration) -> Result<String> {
        let args = self.args(rest);
        let line = format!("{} {}", self.bin, args.join(" "));
        let mut child = Command::new(&self.bin)
            .args(&args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {line} (make setup installs kubectl)"))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).with_context(|| format!("{line}: writing its input"))?;
        }
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let reader = std::thread::spawn(move || {
            let (mut o, mut e) = (String::new(), String::new());
            if let Some(s) = out.as_mut() {
                let _ = s.read_to_string(&mut o);
            }
            if let Some(s) = err.as_mut() {
                let _ = s.read_to_string(&mut e);
            }
            (o, e)
        });
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{line}: no answer within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (o, e) = reader.join().unwrap_or_default();
        if !status.success() {
            bail!("{line}: {}", e.trim());
        }
        Ok(o)
    }

    /// The cluster answers for this context and the namespace exists.
    pub fn reachable(&self) -> Result<()> {
        self.run(&["get", "namespace", &self.namespace, "-o", "name"], None, Duration::from_secs(20))
            .with_context(|| format!("context {:?} cannot be reached (nothing was written)", self.context))
            .map(|_| ())
    }

    /// `kubectl apply -f -` of a YAML stream.
    pub fn apply(&self, yaml: &str) -> Result<()> {
        self.run(&["apply", "-f", "-"], Some(yaml), Duration::from_secs(60)).map(|_| ())
    }

    /// An admin endpoint of `workload`'s sidecar through istio-agent (`pilot-agent request GET`).
    pub fn proxy_get(&self, workload: &str, path: &str) -> Result<String> {
        self.run(
            &["exec", workload, "-c", "istio-proxy", "--", "pilot-agent", "request", "GET", path],
            None,
            Duration::from_secs(30),
        )
    }

    /// A command in `workload`'s `container`, e.g. fortio's load.
    pub fn exec(&self, workload: &str, container: &str, cmd: &[String], limit: Duration) -> Result<String> {
        let mut rest: Vec<&str> = vec!["exec", workload, "-c", container, "--"];
        rest.extend(cmd.iter().map(String::as_str));
        self.run(&rest, None, limit)
    }

    /// The sidecar log of `workload` over the last `secs` seconds.
    pub fn proxy_logs(&self, workload: &str, secs: u64) -> Result<String> {
        self.run(&["logs", workload, "-c", "istio-proxy", &format!("--since={secs}s")], None, Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_names_its_context_and_namespace_and_errors_name_the_command() {
        let k = Kubectl::new("prod", "shop");
        assert_eq!(k.args(&["get", "pods"]), ["--context", "prod", "-n", "shop", "get", "pods"]);
        let missing = Kubectl { bin: "/nonexistent/kubectl".into(), ..k.clone() };
        let e = format!("{:#}", missing.reachable().unwrap_err());
        assert!(e.starts_with("context \"prod\" cannot be reached (nothing was written)"), "{e}");
        // A kubectl that fails: its command line and stderr; one that hangs: the time limit.
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::process::Command::new("chmod").arg("+x").arg(&p).status().unwrap();
            Kubectl { bin: p.display().to_string(), ..k.clone() }
        };
        let e = format!("{:#}", script("fails", "echo 'forbidden' >&2; exit 1").apply("x: 1").unwrap_err());
        assert!(e.ends_with("--context prod -n shop apply -f -: forbidden"), "{e}");
        let e =
            format!("{:#}", script("hangs", "sleep 5").run(&["get"], None, Duration::from_millis(200)).unwrap_err());
        assert!(e.contains("no answer within 200ms"), "{e}");
        assert_eq!(script("echoes", "cat").run(&["apply"], Some("a: b\n"), Duration::from_secs(5)).unwrap(), "a: b\n");
    }
}
