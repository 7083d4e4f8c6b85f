//! The pooling instance allocator: slots for instances, their memories, tables
//! and async stacks, reserved once when the engine starts and reused, with
//! linear memories initialised copy-on-write from each module's image. An
//! instance then starts in microseconds instead of mapping memory afresh.

use crate::sandbox::Fault;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How many instances a pooled engine holds at once, and how large each may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolingConfig {
    /// Agent instances in flight at once: each run holds one, and each local
    /// agent it calls one more. A run reserves all it may need before it
    /// starts; past this, it is refused at once, as worth retrying.
    pub agents: u32,
    /// Tool-call instances in flight at once, shared by every run. A tool
    /// call that finds none free waits for one, up to its time limit: tools
    /// call nothing, so each slot comes free within a tool's time limit.
    pub tool_calls: u32,
    /// The most linear memory one instance may have, in bytes: at least the
    /// memory limit of every policy the engine runs under. Each slot reserves
    /// this much address space (not memory).
    pub max_memory: u64,
    /// The most core instances one component may have. They are counted,
    /// not preallocated: a Rust component has about five, a componentize-py
    /// one 14 and one more for each native extension it bundles.
    pub core_instances_per_component: u32,
}

/// A Rust component built for `wasm32-wasip2` is its program's module plus the
/// WASI adapter and the shims that tie them together: about five core
/// instances, two memories and three tables; componentize-py's has 14 core
/// instances, one memory and two tables. Headroom for other toolchains.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 8;
/// What a slot of the pool needs beyond its memory: guard pages catch
/// out-of-bounds accesses without bounds checks on every one.
const GUARD_SIZE: u64 = 32 * 1024 * 1024;
pub(super) const WASM_PAGE: u64 = 64 * 1024;
const DECOMMIT_BATCH: usize = 64;
/// How much of each table and async stack a freed slot keeps resident,
/// zeroing it in place instead of handing its pages back: the next instance
/// then touches them without faulting, and a fault costs a TLB shootdown on
/// every core. Measured (BENCHMARKS.md): about 1.3× the runs a second at no
/// peak-memory cost under 10,000 concurrent runs.
const KEEP_RESIDENT: usize = 16 * 1024;
/// How many of the pages an instance wrote to its linear memory its slot
/// keeps, reset in place to the module's image, where the kernel can say
/// which pages were written (`PAGEMAP_SCAN`, Linux 6.7). The next instance of
/// the same module then runs without a copy-on-write fault, each of which
/// interrupted the other core: 3× the runs a second (BENCHMARKS.md). A slot
/// keeps at most what its last instance wrote, which the instance held while
/// it ran anyway. Without the scan, keeping memory resident would mean zeroing
/// all of it for every instance, so memories are then handed back.
const MEMORY_KEEP_RESIDENT: usize = 4 * 1024 * 1024;
/// Tool calls in flight at once unless told otherwise: tool calls are short,
/// so many runs share few slots, and each slot costs address-space mappings.
const DEFAULT_TOOL_CALLS: u32 = 256;

impl PoolingConfig {
    /// Room for `agents` runs at once, and as many tool calls up to 256,
    /// each under the default memory limit.
    pub fn new(agents: u32) -> Self {
        PoolingConfig {
            agents,
            tool_calls: agents.min(DEFAULT_TOOL_CALLS),
            max_memory: crate::sandbox::Limits::DEFAULT_MEMORY,
            core_instances_per_component: CORE_INSTANCES_PER_COMPONENT,
        }
    }

    /// Says what a component needs when it has more core instances than
    /// this pool allows one.
    pub(crate) fn check_component(&self, bytes: &[u8]) -> Result<(), String> {
        let core_instances = core_instances(bytes);
        if core_instances > self.core_instances_per_component {
            return Err(format!(
                "it needs {core_instances} core instances; this host's pool allows {} per component",
                self.core_instances_per_component
            ));
        }
        Ok(())
    }

    /// Every instance slot of the pool, agents' and tool calls'.
    fn instances(&self) -> u32 {
        self.agents.saturating_add(self.tool_calls).max(1)
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
        let instances = self.instances();
        let max_memory = self.max_memory.div_ceil(WASM_PAGE) * WASM_PAGE;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(self.core_instances_per_component))
            .max_core_instances_per_component(self.core_instances_per_component)
            .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
            .max_tables_per_component(TABLES_PER_COMPONENT)
            // Every instance in flight is suspended on its own fiber stack.
            .total_stacks(instances)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            // Returning a slot's pages to the kernel interrupts every core
            // running the process; doing it for many slots at once costs less.
            .decommit_batch_size(DECOMMIT_BATCH)
            .table_keep_resident(KEEP_RESIDENT)
            .async_stack_keep_resident(KEEP_RESIDENT);
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
        }
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // A slot reserves only what its memory may grow to, so thousands
            // of slots fit in the address space.
            .memory_reservation(max_memory)
            .memory_guard_size(GUARD_SIZE)
            .memory_init_cow(true);
    }
}

/// Core modules a component instantiates, nested components' included.
fn core_instances(bytes: &[u8]) -> u32 {
    let mut count = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let Ok(wasmparser::Payload::InstanceSection(instances)) = payload {
            count += instances
                .into_iter()
                .filter(|instance| matches!(instance, Ok(wasmparser::Instance::Instantiate { .. })))
                .count();
        }
    }
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The pool's instance slots in two shares. A run takes every agent slot it
/// may need (itself and the chain of local agents it may call) before it
/// starts, or is refused at once, as worth retrying. Tool calls share the
/// other slots and wait for one: a tool holds its slot for at most its time
/// limit and waits on nothing, so an admitted run always gets its tool calls
/// in time while a few slots serve many runs.
pub(crate) struct InstanceSlots {
    agents: Arc<Semaphore>,
    agents_total: u32,
    tool_calls: Arc<Semaphore>,
}

/// Slots held by a run or a tool call, given back when it ends.
pub(crate) struct Reservation {
    _slots: OwnedSemaphorePermit,
}

impl InstanceSlots {
    pub fn new(pooling: &PoolingConfig) -> Self {
        InstanceSlots {
            agents: Arc::new(Semaphore::new(pooling.agents as usize)),
            agents_total: pooling.agents,
            tool_calls: Arc::new(Semaphore::new(pooling.tool_calls as usize)),
        }
    }

    /// Takes `needed` agent slots, or says why it cannot.
    pub fn reserve(&self, needed: u32) -> Result<Reservation, Fault> {
        if needed > self.agents_total {
            return Err(Fault::AtCapacity(format!(
                "the run may need {needed} agent instances at once, more than the pool's {}; give the host more instance slots",
                self.agents_total
            )));
        }
        self.agents
            .clone()
            .try_acquire_many_owned(needed)
            .map(|slots| Reservation { _slots: slots })
            .map_err(|_| {
                Fault::AtCapacity(format!(
                    "the run may need {needed} of the pool's {} agent instances at once and {} are free; retry later",
                    self.agents_total,
                    self.agents.available_permits(),
                ))
            })
    }

    /// A tool-call slot if one is free now.
    pub fn free_tool_call(&self) -> Option<Reservation> {
        let slot = self.tool_calls.clone().try_acquire_owned().ok()?;
        Some(Reservation { _slots: slot })
    }

    /// A tool-call slot, as soon as one is free and at most `patience` from now.
    pub async fn tool_call(&self, patience: Duration) -> Result<Reservation, Fault> {
        let free = self.tool_calls.clone().acquire_owned();
        match tokio::time::timeout(patience, free).await {
            Ok(Ok(slot)) => Ok(Reservation { _slots: slot }),
            // The semaphore is never closed; a closed one would mean no slot, ever.
            Ok(Err(_)) | Err(_) => Err(Fault::AtCapacity(format!(
                "no tool-call instance came free within {}; retry later",
                humantime::format_duration(patience)
            ))),
        }
    }
}
