//! A small proxy-wasm host on wasmtime for deterministic ABI-level tests of the built filter.
//!
//! One [`Host`] is one Envoy process: N VMs of the same module (Envoy's per-worker VMs) share
//! shared data (Envoy's CAS semantics), a virtual clock, metrics by name and a log sink. The test
//! drives everything: configuration pushes, ticks as the clock advances, HTTP streams, and the
//! answer (or silence) for every `proxy_http_call` the VMs make, in any order.

pub mod abi;
mod mem;
pub mod state;
mod wasi;

pub use state::{Call, CallId, LogLine, MetricKind, Shared, VmState};

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::rc::Rc;
use wasmtime::{format_err, Config, Engine, Instance, Linker, Module, Result, Store, WasmParams, WasmResults};

/// Where the virtual clock starts (ns since the epoch, late 2026).
pub const T0_NS: u64 = 1_795_000_000_000_000_000;

/// An engine with Wasm SIMD (the filter is built with +simd128).
pub fn engine() -> Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_simd(true);
    Engine::new(&cfg)
}

/// Compiles `wasm`, or loads the compilation of the same bytes from `cache_dir` (compiling the
/// model build takes a while; its bytes and the engine settings key the cache).
pub fn load_module(engine: &Engine, wasm: &Path, cache_dir: &Path) -> Result<Module> {
    let bytes =
        std::fs::read(wasm).map_err(|e| format_err!("{}: {e} (build it with `make filter`)", wasm.display()))?;
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    let stem = wasm.file_stem().and_then(|s| s.to_str()).unwrap_or("module").to_string();
    let cached = cache_dir.join(format!("{stem}-{:016x}.cwasm", h.finish()));
    if cached.exists() {
        // SAFETY: the file was written by `Module::serialize` of this engine configuration
        // (the key includes its compatibility hash); wasmtime checks the header as well.
        if let Ok(m) = unsafe { Module::deserialize_file(engine, &cached) } {
            return Ok(m);
        }
    }
    let module = Module::new(engine, &bytes)?;
    if std::fs::create_dir_all(cache_dir).is_ok() {
        // One entry per module (tens of MB): the compilations of its earlier builds go.
        for old in std::fs::read_dir(cache_dir).into_iter().flatten().flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            if name.strip_prefix(&stem).is_some_and(|rest| rest.starts_with('-') && rest.ends_with(".cwasm")) {
                let _ = std::fs::remove_file(old.path());
            }
        }
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        if module.serialize().ok().is_some_and(|b| std::fs::write(&tmp, b).is_ok()) {
            let _ = std::fs::rename(&tmp, &cached);
        }
    }
    Ok(module)
}

/// A linker with every import the host provides, except those named in `omit`.
pub fn linker(engine: &Engine, module: &Module, omit: &[&str]) -> Result<Linker<VmState>> {
    let mut linker = Linker::new(engine);
    abi::define(&mut linker, module, omit)?;
    wasi::define(&mut linker, module, omit)?;
    Ok(linker)
}

struct Vm {
    store: Store<VmState>,
    instance: Instance,
    /// The newest root context (the one a configuration push created).
    root: u32,
}

/// One Envoy process: VMs of one module sharing [`Shared`].
pub struct Host {
    pub shared: Rc<RefCell<Shared>>,
    module: Module,
    linker: Linker<VmState>,
    vms: Vec<Option<Vm>>,
    next_context: u32,
}

impl Host {
    pub fn new(module: &Module, linker: Linker<VmState>) -> Self {
        let shared = Shared { now_ns: T0_NS, ..Default::default() };
        Host { shared: Rc::new(RefCell::new(shared)), module: module.clone(), linker, vms: Vec::new(), next_context: 0 }
    }

    /// Starts a VM: instantiate, `_initialize`, a root context and `proxy_on_vm_start`.
    pub fn add_vm(&mut self) -> Result<usize> {
        let index = self.vms.len();
        let mut store = Store::new(self.module.engine(), VmState::new(index, Rc::clone(&self.shared)));
        let instance = self.linker.instantiate(&mut store, &self.module)?;
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        store.data_mut().alloc = Some(instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")?);
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ())?;
        }
        self.vms.push(Some(Vm { store, instance, root: 0 }));
        self.new_root(index)?;
        Ok(index)
    }

    fn new_root(&mut self, vm: usize) -> Result<u32> {
        self.next_context += 1;
        let ctx = self.next_context;
        self.invoke::<(i32, i32), ()>(vm, ctx, "proxy_on_context_create", (ctx as i32, 0))?;
        let started: i32 = self.invoke(vm, ctx, "proxy_on_vm_start", (ctx as i32, 0))?;
        if started == 0 {
            return Err(format_err!("vm {vm}: proxy_on_vm_start returned false"));
        }
        self.vm(vm)?.root = ctx;
        Ok(ctx)
    }

    /// `proxy_on_configure` of the VM's current root context with `config` as the plugin
    /// configuration; returns what the module answered.
    pub fn configure(&mut self, vm: usize, config: &[u8]) -> Result<bool> {
        let root = self.vm(vm)?.root;
        self.vm(vm)?.store.data_mut().plugin_config = config.to_vec();
        let ok: i32 = self.invoke(vm, root, "proxy_on_configure", (root as i32, config.len() as i32))?;
        Ok(ok != 0)
    }

    /// A configuration push as Envoy makes it: a new root context, then `configure`. The old
    /// root context lives on (its ticks and callouts continue), as while a listener drains.
    pub fn reconfigure(&mut self, vm: usize, config: &[u8]) -> Result<bool> {
        self.new_root(vm)?;
        self.configure(vm, config)
    }

    /// Deletes an old root context once its listener drained (`proxy_on_done`, `proxy_on_delete`):
    /// its ticks stop and its outstanding callouts are cancelled (never answered), as in Envoy.
    pub fn delete_root(&mut self, vm: usize, root: u32) -> Result<()> {
        if self.root(vm) == Some(root) {
            return Err(format_err!("vm {vm}: root context {root} is the current one"));
        }
        let _done: i32 = self.invoke(vm, root, "proxy_on_done", root as i32)?;
        self.invoke::<i32, ()>(vm, root, "proxy_on_delete", root as i32)?;
        self.vm(vm)?.store.data_mut().ticks.remove(&root);
        self.shared.borrow_mut().calls.retain(|c| c.id.vm != vm || c.context != root);
        Ok(())
    }

    /// Drops a VM (a worker going away): it never ticks again and its callouts are lost.
    pub fn drop_vm(&mut self, vm: usize) {
        if let Some(slot) = self.vms.get_mut(vm) {
            *slot = None;
        }
        self.shared.borrow_mut().calls.retain(|c| c.id.vm != vm);
    }

    pub fn is_live(&self, vm: usize) -> bool {
        self.vms.get(vm).is_some_and(Option::is_some)
    }

    pub fn root(&self, vm: usize) -> Option<u32> {
        self.vms.get(vm).and_then(Option::as_ref).map(|v| v.root)
    }

    fn vm(&mut self, vm: usize) -> Result<&mut Vm> {
        self.vms.get_mut(vm).and_then(Option::as_mut).ok_or_else(|| format_err!("vm {vm} does not exist (dropped?)"))
    }

    /// Calls an export for `ctx` (the effective context meanwhile); a trap comes back as an
    /// error with the VM's error log lines (the SDK logs panics before it aborts).
    fn invoke<P: WasmParams, R: WasmResults>(&mut self, vm: usize, ctx: u32, name: &str, params: P) -> Result<R> {
        let v = self.vm(vm)?;
        v.store.data_mut().effective = ctx;
        let f = v.instance.get_typed_func::<P, R>(&mut v.store, name)?;
        f.call(&mut v.store, params).map_err(|e| {
            let logs: Vec<String> = self
                .shared
                .borrow()
                .logs
                .iter()
                .filter(|l| l.vm == vm && l.level >= 4)
                .map(|l| l.message.clone())
                .collect();
            format_err!("vm {vm}: {name}({ctx}) failed: {e:?}; error logs: {logs:?}")
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.shared.borrow().now_ns
    }

    /// Advances the virtual clock by `ms`, firing every tick that falls due on the way, in time
    /// order (ties: lower VM, then lower context first).
    pub fn advance(&mut self, ms: u64) -> Result<()> {
        let target = self.now_ns() + ms * 1_000_000;
        loop {
            let mut due: Option<(u64, usize, u32)> = None;
            for (i, v) in self.vms.iter().enumerate() {
                let Some(v) = v else { continue };
                for (root, t) in &v.store.data().ticks {
                    if t.next_ns <= target && due.is_none_or(|d| (t.next_ns, i, *root) < d) {
                        due = Some((t.next_ns, i, *root));
                    }
                }
            }
            let Some((at, vm, root)) = due else { break };
            self.shared.borrow_mut().now_ns = at;
            if let Some(t) = self.vm(vm)?.store.data_mut().ticks.get_mut(&root) {
                t.next_ns = at + u64::from(t.period_ms) * 1_000_000;
            }
            self.invoke::<i32, ()>(vm, root, "proxy_on_tick", root as i32)?;
        }
        self.shared.borrow_mut().now_ns = target;
        Ok(())
    }

    /// One downstream request through the VM's current root context: request headers, then the
    /// access log with `response.code` (None: the stream ended without a response) and
    /// `response.flags`, as i64 little-endian properties.
    pub fn stream(&mut self, vm: usize, headers: &[(&str, &str)], code: Option<i64>, flags: i64) -> Result<()> {
        let root = self.vm(vm)?.root;
        self.next_context += 1;
        let ctx = self.next_context;
        self.invoke::<(i32, i32), ()>(vm, ctx, "proxy_on_context_create", (ctx as i32, root as i32))?;
        let d = self.vm(vm)?.store.data_mut();
        d.request_headers.insert(ctx, headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let mut props = std::collections::BTreeMap::new();
        if let Some(code) = code {
            props.insert("response.code".to_string(), code.to_le_bytes().to_vec());
        }
        props.insert("response.flags".to_string(), flags.to_le_bytes().to_vec());
        d.properties.insert(ctx, props);
        let _action: i32 = self.invoke(vm, ctx, "proxy_on_request_headers", (ctx as i32, headers.len() as i32, 1))?;
        self.invoke::<i32, ()>(vm, ctx, "proxy_on_log", ctx as i32)?;
        let _done: i32 = self.invoke(vm, ctx, "proxy_on_done", ctx as i32)?;
        self.invoke::<i32, ()>(vm, ctx, "proxy_on_delete", ctx as i32)?;
        let d = self.vm(vm)?.store.data_mut();
        d.request_headers.remove(&ctx);
        d.properties.remove(&ctx);
        Ok(())
    }

    /// Outstanding callouts, in dispatch order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.borrow().calls.clone()
    }

    fn take_call(&mut self, id: CallId) -> Result<Call> {
        let mut s = self.shared.borrow_mut();
        let i = s.calls.iter().position(|c| c.id == id).ok_or_else(|| format_err!("no outstanding call {id:?}"))?;
        Ok(s.calls.remove(i))
    }

    /// Answers a callout: `:status` plus `headers`, and `body`.
    pub fn respond(&mut self, id: CallId, code: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<()> {
        let call = self.take_call(id)?;
        let mut h = vec![(":status".to_string(), code.to_string())];
        h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let n = h.len() as i32;
        self.vm(id.vm)?.store.data_mut().call_response = Some((h, body.to_vec()));
        let args = (call.context as i32, id.token as i32, n, body.len() as i32, 0);
        let r = self.invoke::<(i32, i32, i32, i32, i32), ()>(id.vm, call.context, "proxy_on_http_call_response", args);
        if let Ok(v) = self.vm(id.vm) {
            v.store.data_mut().call_response = None;
        }
        r
    }

    /// Fails a callout as Envoy does when the call gets no response (reset, timeout): no
    /// headers, no body.
    pub fn fail(&mut self, id: CallId) -> Result<()> {
        let call = self.take_call(id)?;
        let args = (call.context as i32, id.token as i32, 0, 0, 0);
        self.invoke::<(i32, i32, i32, i32, i32), ()>(id.vm, call.context, "proxy_on_http_call_response", args)
    }

    /// Linear memory of a VM in bytes (it only grows: the VM's high-water mark).
    pub fn memory_bytes(&mut self, vm: usize) -> Result<usize> {
        let v = self.vm(vm)?;
        let m = v.store.data().memory.ok_or_else(|| format_err!("vm {vm}: no memory export"))?;
        Ok(m.data_size(&v.store))
    }

    /// Bytes of shared data under keys starting with `prefix`.
    pub fn shared_bytes(&self, prefix: &str) -> usize {
        self.shared.borrow().data.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, (v, _))| v.len()).sum()
    }

    /// The value under one key of shared data.
    pub fn shared_value(&self, key: &str) -> Option<Vec<u8>> {
        self.shared.borrow().data.get(key).map(|(v, _)| v.clone())
    }

    /// A metric's value by name (shared by all VMs, as Envoy's stats).
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.shared.borrow().metrics.get(name).map(|(_, v)| *v)
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.shared.borrow().logs.clone()
    }

    /// The `SFR2L_TRACE` log lines written so far.
    pub fn trace_lines(&self) -> Vec<String> {
        self.shared.borrow().trace_lines()
    }
}
