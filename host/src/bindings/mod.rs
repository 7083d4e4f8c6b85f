//! The WIT contract, host side: bindings for the two worlds of `wit/`.
//! Interfaces both worlds import are generated once, with the `agent` world,
//! and shared. The contract imports no capability: a resource the host
//! implements (`chat-stream`, `span`) is a handle here, and the capability
//! that owns it keeps its state in the store's table under the same handle.

mod bounds;
pub(crate) use bounds::{
    Bounded, MAX_GUEST_ATTRIBUTES, MAX_GUEST_LIST, MAX_LOG_BYTES_SHOWN, MAX_LOG_RECORDS,
    MAX_OPEN_SPANS, MAX_SPAN_BYTES, MAX_SPANS, Tally, attribute_bytes, bounded_list,
};

/// Bindings for the `agent` world.
pub mod agent {
    wasmtime::component::bindgen!({
        world: "agent",
        path: "../wit",
        imports: {
            "glassbox:agent/telemetry": trappable,
            default: async | trappable,
        },
        exports: { default: async },
    });
}

/// Bindings for the `tool-plugin` world.
pub mod tool_plugin {
    wasmtime::component::bindgen!({
        world: "tool-plugin",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "glassbox:agent/types": super::agent::glassbox::agent::types,
            "glassbox:agent/llm": super::agent::glassbox::agent::llm,
            "glassbox:agent/telemetry": super::agent::glassbox::agent::telemetry,
        },
    });
}

pub use agent::glassbox::agent::types::Error as GuestError;

impl GuestError {
    /// The low-cardinality `error.type` recorded on spans and metrics.
    pub fn error_type(&self) -> &'static str {
        use crate::telemetry::semconv::error_type;
        match self {
            GuestError::RateLimited(_) => error_type::RATE_LIMITED,
            GuestError::Timeout(_) => error_type::TIMEOUT,
            GuestError::InvalidRequest(_) => error_type::INVALID_REQUEST,
            GuestError::NotAllowed(_) => error_type::NOT_ALLOWED,
            GuestError::NotFound(_) => error_type::NOT_FOUND,
            GuestError::InvalidArguments(_) => error_type::INVALID_ARGUMENTS,
            GuestError::ToolFailed(_) => error_type::TOOL_FAILED,
            GuestError::Crashed(_) => error_type::TRAP,
            GuestError::Provider(_) => error_type::PROVIDER,
            GuestError::BudgetExceeded(_) => error_type::BUDGET_EXCEEDED,
            GuestError::LimitExceeded(_) => error_type::LIMIT_EXCEEDED,
            GuestError::Unavailable(_) => error_type::UNAVAILABLE,
        }
    }

    /// The message for people, whatever the case.
    pub fn message(&self) -> &str {
        match self {
            GuestError::RateLimited(limit) => &limit.message,
            GuestError::Timeout(m)
            | GuestError::InvalidRequest(m)
            | GuestError::NotAllowed(m)
            | GuestError::NotFound(m)
            | GuestError::InvalidArguments(m)
            | GuestError::ToolFailed(m)
            | GuestError::Crashed(m)
            | GuestError::Provider(m)
            | GuestError::BudgetExceeded(m)
            | GuestError::LimitExceeded(m)
            | GuestError::Unavailable(m) => m,
        }
    }
}
