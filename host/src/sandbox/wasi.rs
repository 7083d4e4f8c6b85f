//! The WASI context of one instance: deny by default. Only the directories
//! and variables of its [`Policy`] are visible; every socket connect, bind or
//! send is refused and recorded; no name lookups, arguments or stdin. The
//! component's stdout and stderr become host log lines tagged with it, up to a cap.

use super::{Policy, record_denial};
use crate::text::printable;
use opentelemetry::Context;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Longest line kept from a guest's output; longer lines are split.
const MAX_LINE: usize = 8 * 1024;
/// Output logged per stream and instance; the rest is counted, not logged, so
/// a guest printing megabytes cannot flood the host's log.
const MAX_OUTPUT: usize = 256 * 1024;

/// A fresh WASI context for one instance of `component`, whose denials are
/// recorded on the span of the call it serves, `call_span`.
pub(crate) fn wasi_ctx(
    component: &Arc<str>,
    policy: &Policy,
    call_span: Arc<Mutex<Context>>,
) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    let denied_component = component.clone();
    builder
        .stdout(GuestOutput::new(component, "stdout"))
        .stderr(GuestOutput::new(component, "stderr"))
        // Sockets may be created, but every address they would use is refused
        // here, where the attempt can be recorded.
        .allow_tcp(true)
        .allow_udp(true)
        .socket_addr_check(move |address, used_for| {
            // Every connection starts with an implicit bind to an ephemeral
            // port; let that pass so the refusal names what the guest was
            // after. Connecting, listening, sending and receiving are refused.
            if matches!(used_for, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
                && address.ip().is_unspecified()
                && address.port() == 0
            {
                return Box::pin(async { true });
            }
            let what = match used_for {
                SocketAddrUse::TcpBind => "TCP bind",
                SocketAddrUse::TcpConnect => "TCP connect",
                SocketAddrUse::TcpListen => "TCP listen",
                SocketAddrUse::TcpAccept => "TCP accept",
                SocketAddrUse::UdpBind => "UDP bind",
                SocketAddrUse::UdpSend => "UDP send",
                SocketAddrUse::UdpReceive => "UDP receive",
            };
            let span = call_span.lock().unwrap_or_else(|e| e.into_inner());
            record_denial(&denied_component, &span, format!("{what} {address}"));
            Box::pin(async { false })
        })
        .allow_ip_name_lookup(false)
        .envs(&policy.env);
    for dir in &policy.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| format!("cannot open {} for the guest: {e}", dir.host.display()))?;
    }
    Ok(builder.build())
}

/// A guest output stream that logs each line it receives.
struct GuestOutput {
    component: Arc<str>,
    stream: &'static str,
    /// Bytes received so far on this stream, across its writers.
    received: Arc<AtomicUsize>,
}

impl GuestOutput {
    fn new(component: &Arc<str>, stream: &'static str) -> Self {
        GuestOutput {
            component: component.clone(),
            stream,
            received: Arc::default(),
        }
    }
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
            received: self.received.clone(),
            pending: Vec::new(),
        })
    }
}

struct LineLogger {
    component: Arc<str>,
    stream: &'static str,
    received: Arc<AtomicUsize>,
    pending: Vec<u8>,
}

impl LineLogger {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = printable(line.trim_end_matches(['\r', '\n']));
        tracing::info!("[{} {}] {line}", self.component, self.stream);
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let before = self.received.fetch_add(buf.len(), Ordering::Relaxed);
        let kept = buf.len().min(MAX_OUTPUT.saturating_sub(before));
        self.pending.extend_from_slice(&buf[..kept]);
        // The first write that cannot be logged in full says so, once.
        if kept < buf.len() && before <= MAX_OUTPUT {
            self.pending.push(b'\n');
            let marker = format!(
                "[glassbox: further {} output not logged: over {} KiB]\n",
                self.stream,
                MAX_OUTPUT / 1024
            );
            self.pending.extend_from_slice(marker.as_bytes());
        }
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

    fn poll_flush(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
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
