//! Compiles every guest component (the example plugins and the test fixtures)
//! for `wasm32-wasip2` into this crate's OUT_DIR, and writes a path constant
//! for each, so tests use components built from the sources they test. Rust
//! guests are built with cargo; Python guests with the Python SDK
//! (`sdk/python`) and componentize-py, from the virtualenv that
//! `scripts/guest-toolchains.sh` makes (`GLASSBOX_GUEST_VENV` names another);
//! JavaScript guests with the JavaScript SDK's build command (`sdk/js`, whose
//! dependencies the same script installs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// (package, artifact file stem, constant name)
const GUESTS: &[(&str, &str, &str)] = &[
    ("react-agent", "react_agent", "REACT_AGENT"),
    ("planner-agent", "planner_agent", "PLANNER_AGENT"),
    ("weather", "weather", "WEATHER"),
    ("calculator", "calculator", "CALCULATOR"),
    ("test-tools", "test_tools", "TEST_TOOLS"),
    ("test-agent", "test_agent", "TEST_AGENT"),
    ("otel-agent", "otel_agent", "OTEL_AGENT"),
];

/// Python guests: (source directory, world, artifact stem, constant name)
const PYTHON_GUESTS: &[(&str, &str, &str, &str)] = &[
    (
        "plugins/python/analyst-agent",
        "agent",
        "analyst_agent",
        "PYTHON_ANALYST_AGENT",
    ),
    (
        "plugins/python/text-tools",
        "tool-plugin",
        "text_tools",
        "PYTHON_TEXT_TOOLS",
    ),
    (
        "plugins/python/code-runner",
        "tool-plugin",
        "code_runner",
        "PYTHON_CODE_RUNNER",
    ),
    (
        "tests/fixtures-python/test-agent",
        "agent",
        "python_test_agent",
        "PYTHON_TEST_AGENT",
    ),
    (
        "tests/fixtures-python/test-tools",
        "tool-plugin",
        "python_test_tools",
        "PYTHON_TEST_TOOLS",
    ),
];

/// JavaScript guests: (source directory, world, JavaScript engine, artifact stem, constant name).
/// The default engine builds them all; the other one builds the tools again, so both are
/// tested, and the OpenTelemetry agent, whose metrics only it can export.
const JS_GUESTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "plugins/js/report-agent",
        "agent",
        "quickjs",
        "report_agent",
        "JS_REPORT_AGENT",
    ),
    (
        "plugins/js/data-tools",
        "tool-plugin",
        "quickjs",
        "data_tools",
        "JS_DATA_TOOLS",
    ),
    (
        "tests/fixtures-js/test-tools",
        "tool-plugin",
        "quickjs",
        "js_test_tools",
        "JS_TEST_TOOLS",
    ),
    (
        "tests/fixtures-js/test-agent",
        "agent",
        "quickjs",
        "js_test_agent",
        "JS_TEST_AGENT",
    ),
    (
        "tests/fixtures-js/otel-agent",
        "agent",
        "quickjs",
        "js_otel_agent",
        "JS_OTEL_AGENT",
    ),
    (
        "tests/fixtures-js/otel-agent",
        "agent",
        "starlingmonkey",
        "js_otel_agent_starlingmonkey",
        "JS_OTEL_AGENT_STARLINGMONKEY",
    ),
    (
        "plugins/js/data-tools",
        "tool-plugin",
        "starlingmonkey",
        "data_tools_starlingmonkey",
        "JS_DATA_TOOLS_STARLINGMONKEY",
    ),
    (
        "tests/fixtures-js/test-tools",
        "tool-plugin",
        "starlingmonkey",
        "js_test_tools_starlingmonkey",
        "JS_TEST_TOOLS_STARLINGMONKEY",
    ),
];

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // Read when the script runs, not when it was compiled: a target dir shared by
    // several checkouts may reuse this script's binary for another checkout.
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.join("../..");
    let workspace = workspace.canonicalize().unwrap();
    // Relative to this package, so a target dir shared by several checkouts
    // watches the checkout being built.
    println!("cargo:rerun-if-changed=build.rs");
    for watched in [
        "wit",
        "guest-sdk",
        "sdk/python",
        "sdk/js/src",
        "sdk/js/bin",
        "sdk/js/package.json",
        "plugins",
        "tests/fixtures",
        "tests/fixtures-python",
        "tests/fixtures-js",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed=../../{watched}");
    }

    let target_dir = out_dir.join("guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target_dir)
        // The host build's flags (coverage, sanitizers) do not apply to guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    for (package, ..) in GUESTS {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .expect("cannot run cargo to build the guest components");
    assert!(
        status.success(),
        "building the guest components failed; is the target installed? (`rustup target add wasm32-wasip2`)"
    );

    let mut constants = String::new();
    for (_, stem, constant) in GUESTS {
        let path = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{stem}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        constants.push_str(&format!(
            "/// `{stem}.wasm`, built from source.\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    let mut builds = python_builds(&workspace, &out_dir, &mut constants);
    builds.extend(js_builds(&workspace, &out_dir));
    run_builds(builds, &mut constants);
    let names: Vec<String> = GUESTS
        .iter()
        .map(|(_, _, constant)| constant)
        .chain(
            PYTHON_GUESTS
                .iter()
                .map(|(_, _, _, constant)| constant)
                .chain(JS_GUESTS.iter().map(|(_, _, _, _, constant)| constant)),
        )
        .map(|constant| format!("{constant:?}"))
        .collect();
    constants.push_str(&format!(
        "/// The name of every constant above.\npub const ALL: &[&str] = &[{}];\n",
        names.join(", ")
    ));
    std::fs::write(out_dir.join("artifacts.rs"), constants).unwrap();
}

/// One guest built by another language's tool: its source, its constant, where it goes, the command.
struct Build {
    source: &'static str,
    constant: &'static str,
    path: PathBuf,
    command: Command,
}

/// Installs the Python SDK into OUT_DIR, and the commands building each Python guest with it.
fn python_builds(workspace: &Path, out_dir: &Path, constants: &mut String) -> Vec<Build> {
    println!("cargo:rerun-if-env-changed=GLASSBOX_GUEST_VENV");
    let venv = std::env::var_os("GLASSBOX_GUEST_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/glassbox/guest-venv"))
        })
        .expect("neither GLASSBOX_GUEST_VENV nor HOME is set");
    let componentize_py = venv.join("bin/componentize-py");
    assert!(
        componentize_py.exists(),
        "componentize-py is not installed in {}: run scripts/guest-toolchains.sh",
        venv.display()
    );
    // Built once as a wheel (the build generates the binding stubs), then
    // installed from it where componentize-py looks; tests that install the
    // SDK into an environment of their own use the wheel too.
    let pip = |args: &[&str], path: &Path, source: &Path, what: &str| {
        let status = Command::new(venv.join("bin/pip"))
            .args(args)
            .arg(path)
            .arg(source)
            .status()
            .expect("cannot run pip");
        assert!(status.success(), "{what} failed");
    };
    let wheels = out_dir.join("python-wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    pip(
        &[
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
        ],
        &wheels,
        &workspace.join("sdk/python"),
        "building the Python SDK's wheel (sdk/python)",
    );
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .expect("pip wrote no wheel");
    let sdk = out_dir.join("python-sdk");
    let _ = std::fs::remove_dir_all(&sdk);
    pip(
        &["install", "--quiet", "--no-deps", "--target"],
        &sdk,
        &wheel,
        "installing the Python SDK's wheel",
    );
    constants.push_str(&format!(
        "/// componentize-py, and the Python SDK installed for it (and as a wheel), for tests that build Python.\n\
         pub const COMPONENTIZE_PY: &str = {:?};\npub const PYTHON_SDK: &str = {:?};\npub const PYTHON_SDK_WHEEL: &str = {:?};\n",
        componentize_py.display().to_string(),
        sdk.display().to_string(),
        wheel.display().to_string()
    ));
    PYTHON_GUESTS
        .iter()
        .map(|&(source, world, stem, constant)| {
            let path = out_dir.join(format!("{stem}.wasm"));
            let mut command = Command::new(&componentize_py);
            command
                .args(["-w", world, "componentize", "-p"])
                .arg(&sdk)
                .arg("-p")
                .arg(workspace.join(source))
                .args(["app", "-o"])
                .arg(&path);
            Build {
                source,
                constant,
                path,
                command,
            }
        })
        .collect()
}

/// The commands building each JavaScript guest with the SDK's build command.
fn js_builds(workspace: &Path, out_dir: &Path) -> Vec<Build> {
    let build_command = workspace.join("sdk/js/bin/componentize.js");
    for engine in ["componentize-qjs", "@bytecodealliance/componentize-js"] {
        assert!(
            workspace.join("sdk/js/node_modules").join(engine).exists(),
            "the JavaScript SDK's dependencies are not installed: run scripts/guest-toolchains.sh"
        );
    }
    JS_GUESTS
        .iter()
        .map(|&(source, world, engine, stem, constant)| {
            let path = out_dir.join(format!("{stem}.wasm"));
            let mut command = Command::new("node");
            command
                .arg(&build_command)
                .arg(workspace.join(source).join("app.js"))
                .args(["--world", world, "--engine", engine, "-o"])
                .arg(&path);
            Build {
                source,
                constant,
                path,
                command,
            }
        })
        .collect()
}

/// Runs the builds two at a time (each takes 10-40 CPU-seconds), writing a constant for each.
fn run_builds(builds: Vec<Build>, constants: &mut String) {
    let mut builds = builds.into_iter().peekable();
    while builds.peek().is_some() {
        let running: Vec<_> = builds
            .by_ref()
            .take(2)
            .map(|mut build| {
                let child = build
                    .command
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start the build of {}: {e}", build.source));
                (build, child)
            })
            .collect();
        for (build, mut child) in running {
            let status = child.wait().expect("a guest build did not finish");
            assert!(
                status.success(),
                "building the guest {} failed",
                build.source
            );
            constants.push_str(&format!(
                "/// Built from `{}`.\npub const {}: &str = {:?};\n",
                build.source,
                build.constant,
                build.path.display().to_string()
            ));
        }
    }
}
