//! The pooling instance allocator: slots for instances, their memories, tables
//! and async stacks, reserved once when the engine starts and reused, with
//! linear memories initialised copy-on-write from each module's image. An
//! instance then starts in microseconds instead of mapping memory afresh.

use crate::sandbox::Fault;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How many instances a pooled engine holds at once, and how large each may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolingConfig {
    /// Component instances in flight at once: each agent run holds one, and
    /// each tool call and local agent call one more while it runs. A run
    /// reserves all it may need before it starts; past this, it is refused
    /// at once with a clear error instead of waiting.
    pub instances: u32,
    /// The most linear memory one instance may have, in bytes: at least the
    /// memory limit of every policy the engine runs under. Each slot reserves
    /// this much address space (not memory).
    pub max_memory: u64,
}

/// A Rust component built for `wasm32-wasip2` is its program's module plus the
/// WASI adapter and the shims that tie them together: about five core
/// instances, two memories and three tables. Headroom for other toolchains.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 8;
/// What a slot of the pool needs beyond its memory: guard pages catch
/// out-of-bounds accesses without bounds checks on every one.
const GUARD_SIZE: u64 = 32 * 1024 * 1024;
const WASM_PAGE: u64 = 64 * 1024;
const DECOMMIT_BATCH: usize = 64;

impl PoolingConfig {
    /// Room for `instances` at once, each under the default memory limit.
    pub fn new(instances: u32) -> Self {
        PoolingConfig {
            instances,
            max_memory: crate::sandbox::Limits::DEFAULT_MEMORY,
        }
    }

    /// Refuses limits a slot cannot honour: the guest's allocations would
    /// fail short of its limit, and it would crash instead of being stopped.
    pub(crate) fn check(&self, limits: &crate::sandbox::Limits) -> Result<(), String> {
        if limits.memory > self.max_memory {
            return Err(format!(
                "its memory limit of {} is more than the {} each pooled instance has; raise the pool's max_memory",
                bytesize::ByteSize(limits.memory).display().iec(),
                bytesize::ByteSize(self.max_memory).display().iec()
            ));
        }
        Ok(())
    }

    pub(super) fn apply(&self, config: &mut Config) {
        let instances = self.instances.max(1);
        let max_memory = self.max_memory.div_ceil(WASM_PAGE) * WASM_PAGE;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
            .max_tables_per_component(TABLES_PER_COMPONENT)
            // Every instance in flight is suspended on its own fiber stack.
            .total_stacks(instances)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            // Returning a slot's pages to the kernel interrupts every core
            // running the process; doing it for many slots at once costs less.
            .decommit_batch_size(DECOMMIT_BATCH);
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // A slot reserves only what its memory may grow to, so thousands
            // of slots fit in the address space.
            .memory_reservation(max_memory)
            .memory_guard_size(GUARD_SIZE)
            .memory_init_cow(true);
    }
}

/// The pool's instance slots as runs reserve them: a run takes every slot it
/// may need at once (itself, a tool call, the agents it may call) before it
/// starts, so an admitted run never meets a full pool, and a run that cannot
/// have them is refused at once, as worth retrying.
pub(crate) struct InstanceSlots {
    free: Arc<Semaphore>,
    total: u32,
}

/// Slots held by one run, given back when it ends.
pub(crate) struct Reservation {
    _slots: OwnedSemaphorePermit,
}

impl InstanceSlots {
    pub fn new(total: u32) -> Self {
        InstanceSlots {
            free: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Takes `needed` slots, or says why it cannot.
    pub fn reserve(&self, needed: u32) -> Result<Reservation, Fault> {
        if needed > self.total {
            return Err(Fault::AtCapacity(format!(
                "the run may need {needed} instances at once, more than the pool's {}; give the host more instance slots",
                self.total
            )));
        }
        self.free
            .clone()
            .try_acquire_many_owned(needed)
            .map(|slots| Reservation { _slots: slots })
            .map_err(|_| {
                Fault::AtCapacity(format!(
                    "the run may need {needed} instances at once and {} of the pool's {} are free; retry later",
                    self.free.available_permits(),
                    self.total
                ))
            })
    }
}
