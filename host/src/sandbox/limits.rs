//! Resource limits for one instance (memory, wall-clock time, fuel) and the
//! typed [`Fault`] that says which one stopped a guest, or that it trapped.

use crate::bindings::GuestError;
use crate::telemetry::semconv::error_type;
use crate::text::error_chain;
use bytesize::ByteSize;
use futures_util::FutureExt;
use std::time::Duration;
use wasmtime::{ResourceLimiter, Trap};

/// What one instance may use. Each agent run and each tool call gets a fresh
/// instance, so these apply per run and per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes, summed over the instance's memories.
    pub memory: u64,
    /// Wall-clock time for an agent run or a tool call, including the time
    /// spent waiting on models and tools it calls.
    pub timeout: Duration,
    /// Fuel (roughly, WebAssembly instructions); `None` for no limit.
    pub fuel: Option<u64>,
}

impl Limits {
    pub const DEFAULT_MEMORY: u64 = 256 * 1024 * 1024;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
    /// Less than this cannot hold a component's stack and data.
    pub const MIN_MEMORY: u64 = 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Self::DEFAULT_MEMORY,
            timeout: Self::DEFAULT_TIMEOUT,
            fuel: None,
        }
    }
}

/// Why the host stopped a guest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("it exceeded its time limit of {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("it exceeded its memory limit of {}", ByteSize(*.0).display().iec())]
    Memory(u64),
    #[error("it used up its fuel ({0} units)")]
    Fuel(u64),
    #[error("it overflowed its call stack")]
    StackOverflow,
    #[error("it trapped: {0}")]
    Trap(String),
    /// A pooled engine had no free instance slots for the run; the guest
    /// never started. Worth retrying: it is about other runs, not this one.
    #[error("the host is at capacity: {0}")]
    AtCapacity(String),
}

impl Fault {
    /// Classifies an error a guest call ended with.
    fn from_trap(error: &wasmtime::Error, limits: &Limits) -> Fault {
        if let Some(MemoryLimitHit(limit)) = error.downcast_ref() {
            return Fault::Memory(*limit);
        }
        if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return Fault::AtCapacity(full.to_string());
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => Fault::StackOverflow,
            Some(Trap::OutOfFuel) => Fault::Fuel(limits.fuel.unwrap_or(u64::MAX)),
            _ => Fault::Trap(error_chain(error)),
        }
    }

    /// The `error.type` recorded on spans and metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Fault::Timeout(_) => error_type::TIMEOUT,
            Fault::Memory(_) => error_type::MEMORY_LIMIT,
            Fault::Fuel(_) => error_type::FUEL_EXHAUSTED,
            Fault::StackOverflow => error_type::STACK_OVERFLOW,
            Fault::Trap(_) => error_type::TRAP,
            Fault::AtCapacity(_) => error_type::AT_CAPACITY,
        }
    }

    /// The error a caller of the stopped component sees, naming it.
    pub(crate) fn to_guest_error(&self, component: &str) -> GuestError {
        let message = format!("{component} was stopped: {self}");
        match self {
            Fault::Timeout(_) => GuestError::Timeout(message),
            Fault::Memory(_) | Fault::Fuel(_) => GuestError::LimitExceeded(message),
            // Not the guest's doing, and gone once other runs finish.
            Fault::AtCapacity(_) => GuestError::Unavailable(message),
            Fault::StackOverflow | Fault::Trap(_) => GuestError::Crashed(message),
        }
    }
}

/// Runs a guest call under `limits`: stopped at the time limit (guests yield
/// at every epoch tick, so even one stuck in a loop stops on time), and its
/// trap, if any, classified. Not an `async fn`, which would hold `call` twice
/// over (the argument and the timed copy) for as long as the guest runs.
pub(crate) fn guard<T>(
    limits: &Limits,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> impl Future<Output = Result<T, Fault>> {
    tokio::time::timeout(limits.timeout, call).map(move |outcome| match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Fault::from_trap(&error, limits)),
        Err(_) => Err(Fault::Timeout(limits.timeout)),
    })
}

/// Tables larger than this are refused growth; components need a few hundred entries.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The error a memory growth past the limit traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {} exceeded", ByteSize(*.0).display().iec())]
struct MemoryLimitHit(u64);

/// Enforces [`Limits::memory`] on one store. Growth past the limit traps at
/// once (rather than failing `memory.grow`), so the fault is certain and typed.
pub(crate) struct MemoryLimiter {
    limit: u64,
    /// Bytes of linear memory the store holds, over all its memories.
    used: u64,
}

impl MemoryLimiter {
    pub fn new(limits: &Limits) -> Self {
        MemoryLimiter {
            limit: limits.memory,
            used: 0,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = u64::try_from(desired.saturating_sub(current)).unwrap_or(u64::MAX);
        let used = self.used.saturating_add(growth);
        if used > self.limit {
            return Err(MemoryLimitHit(self.limit).into());
        }
        self.used = used;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_well_and_map_to_guest_errors() {
        let fault = Fault::Memory(64 * 1024 * 1024);
        assert_eq!(
            fault.to_string(),
            "it exceeded its memory limit of 64.0 MiB"
        );
        assert!(matches!(
            fault.to_guest_error("hog.wasm"),
            GuestError::LimitExceeded(m) if m == "hog.wasm was stopped: it exceeded its memory limit of 64.0 MiB"
        ));
        assert_eq!(
            Fault::Timeout(Duration::from_millis(1500)).to_string(),
            "it exceeded its time limit of 1s 500ms"
        );
        assert!(matches!(
            Fault::Timeout(Duration::from_secs(1)).to_guest_error("x"),
            GuestError::Timeout(_)
        ));
    }
}
