//! Child processes of the lab: each in its own process group, logs to a file, stopped by group.
//! Attached children die with the parent (PR_SET_PDEATHSIG), so no exit path leaves orphans.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a lab process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Running,
    /// Paused (SIGSTOP, or a tracer's stop): alive, but answers nothing.
    Stopped,
    /// Exited, killed or a zombie.
    Dead,
}

impl std::fmt::Display for ProcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcState::Running => "running",
            ProcState::Stopped => "stopped (SIGSTOP)",
            ProcState::Dead => "dead",
        })
    }
}

/// The state letter of `/proc/<pid>/stat` (the field after the command name in parentheses).
pub fn parse_stat_state(stat: &str) -> ProcState {
    match stat.rsplit(')').next().and_then(|r| r.trim_start().chars().next()) {
        Some('Z' | 'X' | 'x') | None => ProcState::Dead,
        Some('T' | 't') => ProcState::Stopped,
        Some(_) => ProcState::Running,
    }
}

/// A lab process.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: i32,
    pub log: PathBuf,
    child: Option<std::process::Child>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`. With `attached`, the process gets
    /// `death_signal` when this process dies.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, attached: bool, death_signal: i32) -> Result<Proc> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if attached && libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Proc { name: name.to_string(), pid: child.id() as i32, log: log.to_path_buf(), child: Some(child) })
    }

    /// A process started by an earlier `lab up`.
    pub fn adopt(name: &str, pid: i32, log: PathBuf) -> Proc {
        Proc { name: name.to_string(), pid, log, child: None }
    }

    /// Whether the process still runs (reaps it if it exited).
    pub fn alive(&mut self) -> bool {
        if let Some(c) = self.child.as_mut() {
            return matches!(c.try_wait(), Ok(None));
        }
        pid_alive(self.pid)
    }

    /// Running, paused or dead (reaps it if it exited).
    pub fn state(&mut self) -> ProcState {
        if !self.alive() {
            return ProcState::Dead;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(s) => parse_stat_state(&s),
            Err(_) => ProcState::Dead,
        }
    }

    /// SIGTERM to the group, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.pid <= 0 {
            return;
        }
        // SAFETY: plain signal delivery to a process group we created.
        unsafe {
            libc::killpg(self.pid, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while self.alive() && t0.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe {
            libc::killpg(self.pid, libc::SIGKILL);
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        }
        self.pid = 0;
    }

    /// The last `n` lines of the process log.
    pub fn tail(&self, n: usize) -> String {
        tail_file(&self.log, n)
    }

    /// Fails with the last log lines if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if !self.alive() {
            bail!("{} (pid {}) exited; last lines of {}:\n{}", self.name, self.pid, self.log.display(), self.tail(20));
        }
        Ok(())
    }
}

pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // A zombie still "exists" for kill(0): look at /proc state too.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => parse_stat_state(&s) != ProcState::Dead,
        Err(_) => false,
    }
}

/// The last `n` lines of a file (reads at most 64 KiB from its end).
pub fn tail_file(path: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `ready` until it returns true, the process dies (error with its log) or `timeout`.
pub fn wait_ready(p: &mut Proc, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let t0 = Instant::now();
    loop {
        p.check_alive()?;
        if ready() {
            return Ok(());
        }
        if t0.elapsed() > timeout {
            bail!(
                "{} did not become ready within {:?}; last lines of {}:\n{}",
                p.name,
                timeout,
                p.log.display(),
                p.tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_states_read_past_a_command_name_with_parentheses() {
        assert_eq!(parse_stat_state("42 (envoy) S 1 42 42 0"), ProcState::Running);
        assert_eq!(parse_stat_state("42 (gunicorn: worker [httpbin:app]) R 1"), ProcState::Running);
        assert_eq!(parse_stat_state("42 (a) b) T 1 42"), ProcState::Stopped);
        assert_eq!(parse_stat_state("42 (python) t 1"), ProcState::Stopped);
        assert_eq!(parse_stat_state("42 (envoy) Z 1"), ProcState::Dead);
        assert_eq!(parse_stat_state(""), ProcState::Dead);
    }

    #[test]
    fn a_paused_child_reads_stopped_then_running_then_dead() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut p = Proc::spawn("sleep", cmd, &dir.path().join("sleep.log"), true, libc::SIGKILL)
            .unwrap_or_else(|e| panic!("{e}"));
        let wait_for = |p: &mut Proc, want: ProcState| {
            let t0 = Instant::now();
            while p.state() != want && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            p.state()
        };
        assert_eq!(p.state(), ProcState::Running);
        // SAFETY: signals to the child we started.
        unsafe { libc::kill(p.pid, libc::SIGSTOP) };
        assert_eq!(wait_for(&mut p, ProcState::Stopped), ProcState::Stopped);
        unsafe { libc::kill(p.pid, libc::SIGCONT) };
        assert_eq!(wait_for(&mut p, ProcState::Running), ProcState::Running);
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
        assert_eq!(wait_for(&mut p, ProcState::Dead), ProcState::Dead);
    }
}
