//! The few `wasi_snapshot_preview1` imports a wasm32-wasip1 filter links against: clocks read
//! the host's virtual clock, randomness is a fixed sequence, stdout/stderr go to the log sink,
//! and there is no file system (as in Envoy).

use crate::mem;
use crate::state::{LogLine, VmState};
use wasmtime::{format_err, Caller, Linker, Module, Result};

type C<'a> = Caller<'a, VmState>;

const NS: &str = "wasi_snapshot_preview1";
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;

/// File system imports: every descriptor is bad (no preopens, no files).
pub const STUBS: [&str; 7] = [
    "fd_close",
    "fd_fdstat_get",
    "fd_filestat_get",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "path_open",
    "path_readlink",
];

pub fn define(linker: &mut Linker<VmState>, module: &Module, omit: &[&str]) -> Result<()> {
    let wanted = |name: &str| !omit.contains(&name);
    macro_rules! def {
        ($name:literal, $f:expr) => {
            if wanted($name) {
                linker.func_wrap(NS, $name, $f)?;
            }
        };
    }
    def!("clock_time_get", |mut c: C<'_>, id: i32, _precision: i64, ret: i32| -> Result<i32> {
        // realtime, monotonic, process and thread CPU time: all the virtual clock.
        if !(0..=3).contains(&id) {
            return Ok(EINVAL);
        }
        let now = c.data().shared.borrow().now_ns;
        mem::write_u64(&mut c, ret, now)?;
        Ok(ESUCCESS)
    });
    def!("environ_get", |_c: C<'_>, _environ: i32, _buf: i32| -> Result<i32> { Ok(ESUCCESS) });
    def!("environ_sizes_get", |mut c: C<'_>, count: i32, size: i32| -> Result<i32> {
        mem::write_u32(&mut c, count, 0)?;
        mem::write_u32(&mut c, size, 0)?;
        Ok(ESUCCESS)
    });
    def!("fd_write", |mut c: C<'_>, fd: i32, iovs: i32, n: i32, ret: i32| -> Result<i32> {
        if fd != 1 && fd != 2 {
            return Ok(EBADF);
        }
        let mut out = Vec::new();
        for i in 0..n {
            let iov = mem::read(&c, iovs + i * 8, 8)?;
            let (p, len) = (
                i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]),
                i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]),
            );
            out.extend(mem::read(&c, p, len)?);
        }
        let vm = c.data().vm;
        let message = String::from_utf8_lossy(&out).into_owned();
        c.data().shared.borrow_mut().logs.push(LogLine { vm, level: 99, message });
        mem::write_u32(&mut c, ret, out.len() as u32)?;
        Ok(ESUCCESS)
    });
    def!("proc_exit", |_c: C<'_>, code: i32| -> Result<()> { Err(format_err!("the module called proc_exit({code})")) });
    def!("random_get", |mut c: C<'_>, buf: i32, len: i32| -> Result<i32> {
        // splitmix64 from a per-VM seed: deterministic "randomness".
        let mut bytes = Vec::with_capacity(len as u32 as usize);
        while bytes.len() < len as u32 as usize {
            let d = c.data_mut();
            d.rng = d.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = d.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes.truncate(len as u32 as usize);
        mem::write(&mut c, buf, &bytes)?;
        Ok(ESUCCESS)
    });
    def!("sched_yield", |_c: C<'_>| -> Result<i32> { Ok(ESUCCESS) });
    crate::abi::stubs(linker, module, NS, &STUBS, omit, EBADF)
}
