//! One store's sandbox: its WASI context (deny by default), its outbound HTTP
//! gate and its memory limiter, all from the component's [`Policy`].

use super::http::HttpGate;
use super::limits::MemoryLimiter;
use super::{Policy, wasi};
use crate::telemetry::Telemetry;
use opentelemetry::Context;
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView};

pub(crate) struct SandboxCtx {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    limiter: MemoryLimiter,
    /// The span of the call the instance serves, where denied sockets are recorded.
    call_span: Arc<Mutex<Context>>,
}

impl SandboxCtx {
    /// The sandbox of one instance of `component` under `parent` (the span of
    /// the run or tool call). `telemetry` is `None` while loading, when no
    /// request may leave. Fails when a granted directory cannot be opened.
    pub fn new(
        component: &Arc<str>,
        policy: &Arc<Policy>,
        parent: &Context,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Result<Self, String> {
        let call_span = Arc::new(Mutex::new(parent.clone()));
        Ok(SandboxCtx {
            wasi: wasi::wasi_ctx(component, policy, call_span.clone())?,
            http: WasiHttpCtx::new(),
            http_gate: HttpGate::new(component.clone(), policy.clone(), telemetry),
            limiter: MemoryLimiter::new(&policy.limits),
            call_span,
        })
    }

    /// The instance serves another call, `parent`: what is denied from now
    /// on is recorded on its span.
    pub fn serve_call(&mut self, parent: &Context) {
        *self.call_span.lock().unwrap_or_else(|e| e.into_inner()) = parent.clone();
    }

    pub fn wasi<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiCtxView<'a> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table,
        }
    }

    /// The `wasi:http` view; requests made now belong to `parent`, the
    /// guest's innermost open span.
    pub fn http<'a>(
        &'a mut self,
        table: &'a mut ResourceTable,
        parent: &Context,
    ) -> WasiHttpCtxView<'a> {
        self.http_gate.parent = parent.clone();
        WasiHttpCtxView {
            ctx: &mut self.http,
            table,
            hooks: &mut self.http_gate,
        }
    }

    pub fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
}
