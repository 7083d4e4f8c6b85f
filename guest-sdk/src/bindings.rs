//! Generated bindings for the two Glassbox worlds. The interfaces both worlds
//! import are generated once, with the `agent` world, and shared.

/// Bindings for the `agent` world.
pub mod agent {
    wit_bindgen::generate!({
        world: "agent",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_agent_world",
        default_bindings_module: "glassbox_sdk::bindings::agent",
    });
}

/// Bindings for the `tool-plugin` world.
pub mod tool_plugin {
    wit_bindgen::generate!({
        world: "tool-plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_tool_plugin_world",
        default_bindings_module: "glassbox_sdk::bindings::tool_plugin",
        with: {
            "glassbox:agent/types@0.1.0": crate::bindings::agent::glassbox::agent::types,
            "glassbox:agent/llm@0.1.0": crate::bindings::agent::glassbox::agent::llm,
            "glassbox:agent/telemetry@0.1.0": crate::bindings::agent::glassbox::agent::telemetry,
        },
    });
}
