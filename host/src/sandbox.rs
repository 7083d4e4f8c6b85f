//! The sandbox a component runs in: a deny-by-default WASI context. Nothing
//! from the host (files, network, environment, stdin) is visible unless granted
//! here; the component's stdout and stderr become host log lines tagged with it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// Longest line kept from a guest's output; longer lines are split.
const MAX_LINE: usize = 8 * 1024;

/// What a component is granted. Empty by default.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Environment variables the component sees, set explicitly (never inherited).
    pub env: Vec<(String, String)>,
}

/// A fresh WASI context for one instance of `component`.
pub(crate) fn wasi_ctx(component: &Arc<str>, grants: &Grants) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(GuestOutput {
            component: component.clone(),
            stream: "stdout",
        })
        .stderr(GuestOutput {
            component: component.clone(),
            stream: "stderr",
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .envs(&grants.env);
    builder.build()
}

/// A guest output stream that logs each line it receives.
struct GuestOutput {
    component: Arc<str>,
    stream: &'static str,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            component: self.component.clone(),
            stream: self.stream,
            pending: Vec::new(),
        })
    }
}

struct LineLogger {
    component: Arc<str>,
    stream: &'static str,
    pending: Vec<u8>,
}

impl LineLogger {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        tracing::info!("[{} {}] {line}", self.component, self.stream);
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self
            .pending
            .iter()
            .position(|&b| b == b'\n')
            .or((self.pending.len() >= MAX_LINE).then_some(MAX_LINE - 1))
        {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }
}
