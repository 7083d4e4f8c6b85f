//! `glassbox new`: writes a ready project for an agent or a tool in Rust,
//! Python or JavaScript, from the templates in `host/templates/`, with a
//! README saying how to build it and a `test.sh` that builds it and runs it
//! through `glassbox`.

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use std::path::{Path, PathBuf};

/// What the project builds.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A component of the `agent` world.
    Agent,
    /// A tool plugin: the `tool-plugin` world.
    Tool,
}

/// The language it is written in.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    Rust,
    Python,
    Js,
}

/// (language, kind, path in the project, template text)
const TEMPLATES: &[(Language, Kind, &str, &str)] = &[
    (
        Language::Rust,
        Kind::Tool,
        "Cargo.toml",
        include_str!("../../templates/rust/tool/Cargo.toml"),
    ),
    (
        Language::Rust,
        Kind::Tool,
        "src/lib.rs",
        include_str!("../../templates/rust/tool/src/lib.rs"),
    ),
    (
        Language::Rust,
        Kind::Agent,
        "Cargo.toml",
        include_str!("../../templates/rust/agent/Cargo.toml"),
    ),
    (
        Language::Rust,
        Kind::Agent,
        "src/lib.rs",
        include_str!("../../templates/rust/agent/src/lib.rs"),
    ),
    (
        Language::Python,
        Kind::Tool,
        "app.py",
        include_str!("../../templates/python/tool/app.py"),
    ),
    (
        Language::Python,
        Kind::Agent,
        "app.py",
        include_str!("../../templates/python/agent/app.py"),
    ),
    (
        Language::Js,
        Kind::Tool,
        "app.js",
        include_str!("../../templates/js/tool/app.js"),
    ),
    (
        Language::Js,
        Kind::Tool,
        "package.json",
        include_str!("../../templates/js/tool/package.json"),
    ),
    (
        Language::Js,
        Kind::Agent,
        "app.js",
        include_str!("../../templates/js/agent/app.js"),
    ),
    (
        Language::Js,
        Kind::Agent,
        "package.json",
        include_str!("../../templates/js/agent/package.json"),
    ),
];

/// Where the SDKs are: the checkout this binary was built from, unless `--sdk` names another.
fn sdk_root(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = match given {
        Some(path) => path.to_owned(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let root = root.canonicalize().with_context(|| {
        format!(
            "cannot find the Glassbox checkout at {}: give it with --sdk DIR",
            root.display()
        )
    })?;
    if !root.join("guest-sdk/Cargo.toml").is_file() {
        bail!(
            "{} is not a Glassbox checkout (no guest-sdk/): give one with --sdk DIR",
            root.display()
        );
    }
    Ok(root)
}

/// Writes the project `name` into `dir` (a new directory), and says how to build it.
pub fn create(
    kind: Kind,
    language: Language,
    name: &str,
    dir: Option<&Path>,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "`{name}` is not a project name: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_owned);
    if dir.exists() {
        bail!("{} already exists; choose a new directory", dir.display());
    }
    let root = sdk_root(sdk)?;
    let snake = name.replace('-', "_");
    let world = match kind {
        Kind::Agent => "agent",
        Kind::Tool => "tool-plugin",
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{snake}}", &snake)
            .replace("{{world}}", world)
            .replace(
                "{{rust_sdk}}",
                &root.join("guest-sdk").display().to_string(),
            )
            .replace("{{js_sdk}}", &root.join("sdk/js").display().to_string())
    };
    let (build, component) = match language {
        Language::Rust => (
            "cargo build --release --target wasm32-wasip2".to_owned(),
            format!("target/wasm32-wasip2/release/{snake}.wasm"),
        ),
        Language::Python => (
            format!("componentize-py -w {world} componentize app -o {snake}.wasm"),
            format!("{snake}.wasm"),
        ),
        Language::Js => (
            "npm install --no-audit --no-fund && npm run build".to_owned(),
            format!("{snake}.wasm"),
        ),
    };
    let mut files: Vec<(String, String)> = TEMPLATES
        .iter()
        .filter(|(l, k, ..)| *l == language && *k == kind)
        .map(|(_, _, path, text)| ((*path).to_owned(), fill(text)))
        .collect();
    files.push((
        "README.md".into(),
        readme(name, kind, language, &build, &component, &root),
    ));
    // The script finds a Rust build wherever CARGO_TARGET_DIR puts it.
    let built = component.replacen("target/", "${CARGO_TARGET_DIR:-target}/", 1);
    files.push(("test.sh".into(), test_script(name, kind, &build, &built)));
    if kind == Kind::Agent {
        files.push((
            "test-script.toml".into(),
            format!("# The offline model's answer in test.sh.\n\n[[turn]]\ncontent = \"Hello from {name}.\"\n"),
        ));
    }
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    make_executable(&dir.join("test.sh"))?;
    Ok(dir)
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

fn readme(
    name: &str,
    kind: Kind,
    language: Language,
    build: &str,
    component: &str,
    root: &Path,
) -> String {
    let setup = match language {
        Language::Rust => "rustup target add wasm32-wasip2".to_owned(),
        Language::Python => format!(
            "python3 -m venv .venv && . .venv/bin/activate\npip install {}",
            root.join("sdk/python").display()
        ),
        Language::Js => "# Node.js 20 or later; `npm install` fetches the SDK's tools".to_owned(),
    };
    let run = match kind {
        Kind::Tool => format!(
            "glassbox tools --tool {component}\nglassbox run AGENT.wasm --tool {component} --input \"How many words are in this question?\""
        ),
        Kind::Agent => format!("glassbox run {component} --plugins PLUGINS_DIR --input \"...\""),
    };
    format!(
        "# {name}\n\nA Glassbox {what}, written in {language}.\n\n```sh\n{setup}\n{build}\n{run}\n./test.sh     # builds it and runs it through glassbox\n```\n",
        what = match kind {
            Kind::Agent => "agent",
            Kind::Tool => "tool plugin",
        },
        language = match language {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::Js => "JavaScript",
        },
    )
}

fn test_script(name: &str, kind: Kind, build: &str, component: &str) -> String {
    let check = match kind {
        Kind::Tool => format!(
            "listed=$(\"$glassbox\" tools --tool \"{component}\")\n\
             grep -q '^count_words ' <<<\"$listed\" || {{ echo \"$listed\" >&2; echo \"FAIL: count_words is not listed\" >&2; exit 1; }}\n\
             echo \"ok: {name} provides count_words\""
        ),
        Kind::Agent => format!(
            "answer=$(\"$glassbox\" run \"{component}\" --llm scripted --script test-script.toml --no-trace-tree --input \"Say hello.\")\n\
             [[ $answer == \"Hello from {name}.\" ]] || {{ echo \"FAIL: answered: $answer\" >&2; exit 1; }}\n\
             echo \"ok: {name} answered\""
        ),
    };
    format!(
        "#!/usr/bin/env bash\n# Builds the component and runs it through glassbox (GLASSBOX names the binary).\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\nglassbox=\"${{GLASSBOX:-glassbox}}\"\n\n{build}\n{check}\n"
    )
}
