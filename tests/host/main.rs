//! Glassbox's integration tests: real components built from source, a real
//! OTLP receiver, mock OpenAI and Anthropic servers over real HTTP, and the
//! `glassbox` binary itself.

mod agents;
mod architecture;
mod attacks;
mod backends;
mod cli;
mod conventions;
mod embedding;
mod errors;
mod export;
mod instances;
mod js;
mod mcp;
mod new_project;
mod providers;
mod python;
mod replay;
mod runs;
mod sandbox;
mod scale;
mod serve;
mod streams;
mod support;
mod wasi_otel;

/// Every guest component built for the tests is used by some test.
#[test]
fn every_guest_component_is_exercised() {
    for constant in support::artifacts::ALL {
        let used = [
            include_str!("runs.rs"),
            include_str!("attacks.rs"),
            include_str!("errors.rs"),
            include_str!("cli.rs"),
            include_str!("agents.rs"),
            include_str!("serve.rs"),
            include_str!("sandbox.rs"),
            include_str!("python.rs"),
            include_str!("js.rs"),
            include_str!("mcp.rs"),
            include_str!("scale.rs"),
            include_str!("support/mod.rs"),
            include_str!("wasi_otel.rs"),
        ]
        .iter()
        .any(|source| source.contains(&format!("artifacts::{constant}")));
        assert!(used, "no test uses artifacts::{constant}");
    }
}
