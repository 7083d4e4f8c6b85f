//! The layering rule of ARCHITECTURE.md, checked on the source: every
//! `crate::` path in a module of the host names its own module or one in a
//! lower layer, never a sibling of its layer or anything above it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module name to layer, read from the `layers` block of ARCHITECTURE.md.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let block = text
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    let mut layers = BTreeMap::new();
    for line in block.lines() {
        let (layer, modules) = line.split_once(':').expect("`N: module ...`");
        let layer: usize = layer.trim().parse().unwrap();
        for module in modules.split_whitespace() {
            layers.insert(module.to_owned(), layer);
        }
    }
    layers
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module `file` belongs to, or `None` for the crate root and the CLI (`cli/`, its own crate target).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "cli" => None,
        name => Some(name.trim_end_matches(".rs").to_owned()),
    }
}

/// Every module named by a `crate::` path in `code`, comments left out.
fn imported(code: &str) -> Vec<String> {
    let mut modules = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                modules.push(name);
            }
            rest = after;
        }
    }
    modules
}

#[test]
fn every_module_imports_only_from_layers_below_it() {
    let layers = layers();
    let src = repo().join("host/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let own = *layers
            .get(&module)
            .unwrap_or_else(|| panic!("module `{module}` is in no layer of ARCHITECTURE.md"));
        let code = std::fs::read_to_string(file).unwrap();
        for target in imported(&code) {
            if target == module {
                continue;
            }
            match layers.get(&target) {
                Some(&layer) if layer < own => {}
                Some(&layer) => broken.push(format!(
                    "{}: `{module}` (layer {own}) imports `{target}` (layer {layer})",
                    file.strip_prefix(&src).unwrap().display()
                )),
                None => broken.push(format!(
                    "{}: `crate::{target}` is no module of ARCHITECTURE.md; import through the module that owns it",
                    file.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the layering rule:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_sees_upward_sideways_and_unknown_imports() {
    assert_eq!(
        imported(
            "use crate::runtime::Host;\n// crate::serve in a comment\nlet x = crate::llm::Llm::new(crate::tools::X);"
        ),
        ["runtime", "llm", "tools"]
    );
    assert_eq!(
        module_of(Path::new("/s"), Path::new("/s/llm/call.rs")).as_deref(),
        Some("llm")
    );
    assert_eq!(
        module_of(Path::new("/s"), Path::new("/s/text.rs")).as_deref(),
        Some("text")
    );
    assert_eq!(module_of(Path::new("/s"), Path::new("/s/lib.rs")), None);
    let layers = layers();
    assert!(layers["runtime"] > layers["tools"] && layers["tools"] == layers["agents"]);
}
