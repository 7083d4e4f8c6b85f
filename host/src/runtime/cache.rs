//! The on-disk cache of compiled components, so a second load of the same
//! component skips Cranelift. An entry is keyed by the component's hash and the
//! engine's compile settings, and carries a checksum of its key and code: a
//! stale, truncated or corrupt entry, or one copied under another key, is
//! recompiled and replaced, never run. Writes left half-done by a killed
//! process are swept away the next time the cache is opened.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// Length of the checksum that starts every entry.
const CHECKSUM_LEN: usize = blake3::OUT_LEN;
/// How entries being written are named until they are whole.
const PARTIAL_PREFIX: &str = ".partial-";
/// A partial write older than this belongs to a process that died: no
/// compile takes that long.
const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Compiled components in one directory, for one engine configuration.
pub(crate) struct CompiledCache {
    dir: PathBuf,
    /// The engine's compile settings and Wasmtime version, as part of each key.
    engine_key: String,
}

impl CompiledCache {
    pub fn new(dir: PathBuf, engine: &wasmtime::Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        sweep_partial_writes(&dir);
        CompiledCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// Where the compiled form of `wasm` lives.
    fn entry(&self, wasm: &[u8]) -> PathBuf {
        let component = blake3::hash(wasm).to_hex();
        self.dir
            .join(format!("{}-{}.cwasm", &component[..32], self.engine_key))
    }

    /// The compiled form of `wasm`: from the cache when a sound entry exists,
    /// else compiled and stored for next time. A cache that cannot be read or
    /// written only costs the compile.
    pub fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<Component> {
        let entry = self.entry(wasm);
        match self.load(engine, &entry) {
            Ok(Some(component)) => return Ok(component),
            Ok(None) => {}
            Err(problem) => tracing::warn!(
                "{}: {problem}; compiling the component again",
                entry.display()
            ),
        }
        let compiled = engine.precompile_component(wasm)?;
        if let Err(error) = self.store(&entry, &compiled) {
            tracing::warn!(
                "cannot write the compiled component to {}: {error}",
                entry.display()
            );
        }
        // SAFETY: `compiled` was produced by this engine a moment ago.
        unsafe { Component::deserialize(engine, &compiled) }
    }

    /// The entry's component, `None` when there is no entry, or what is wrong with it.
    fn load(&self, engine: &wasmtime::Engine, entry: &Path) -> Result<Option<Component>, String> {
        let bytes = match std::fs::read(entry) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("cannot read the cache entry: {error}")),
        };
        let Some((checksum, code)) = bytes.split_at_checked(CHECKSUM_LEN) else {
            return Err(format!(
                "the cache entry is truncated ({} bytes)",
                bytes.len()
            ));
        };
        if checksum_of(entry, code).as_bytes() != checksum {
            return Err("the cache entry is corrupt (its checksum does not match)".into());
        }
        // SAFETY: Wasmtime runs precompiled code without validating it. These
        // bytes are exactly what `store` wrote after this engine (same version
        // and settings, which the file name encodes) compiled them; the
        // checksum rules out corruption, and the directory is the user's own,
        // as trusted as the glassbox binary. Wasmtime still checks its header
        // for version and configuration.
        unsafe { Component::deserialize(engine, code) }
            .map(Some)
            .map_err(|error| format!("the cache entry is unusable: {error}"))
    }

    /// Writes the entry whole or not at all, so concurrent runs never read half of one.
    fn store(&self, entry: &Path, compiled: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let mut file = tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            .tempfile_in(&self.dir)?;
        file.write_all(checksum_of(entry, compiled).as_bytes())?;
        file.write_all(compiled)?;
        file.as_file().sync_data()?;
        file.persist(entry)?;
        Ok(())
    }
}

/// The checksum of `code` stored as `entry`: over the entry's name too, so
/// an entry copied under another component's name does not pass for it.
fn checksum_of(entry: &Path, code: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let name = entry
        .file_name()
        .map(|name| name.as_encoded_bytes())
        .unwrap_or_default();
    hasher.update(&(name.len() as u64).to_le_bytes());
    hasher.update(name);
    hasher.update(code);
    hasher.finalize()
}

/// Removes the partial writes of processes that died writing them.
fn sweep_partial_writes(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let partial = entry
            .file_name()
            .to_string_lossy()
            .starts_with(PARTIAL_PREFIX);
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_PARTIAL);
        if partial && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates `dir` readable by its owner only: whoever can write to it could
/// make the host run their code.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is a file, not a directory", dir.display()),
        ));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: a header with no sections.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine() -> wasmtime::Engine {
        wasmtime::Engine::default()
    }

    #[test]
    fn a_second_load_reads_the_entry_and_a_damaged_one_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompiledCache::new(dir.path().join("components"), &engine);
        cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
        let entry = cache.entry(EMPTY_COMPONENT);
        assert!(cache.load(&engine, &entry).unwrap().is_some());

        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).unwrap();
        assert_eq!(
            cache.load(&engine, &entry).err().unwrap(),
            "the cache entry is corrupt (its checksum does not match)"
        );
        std::fs::write(&entry, &bytes[..10]).unwrap();
        assert_eq!(
            cache.load(&engine, &entry).err().unwrap(),
            "the cache entry is truncated (10 bytes)"
        );

        cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
        assert!(cache.load(&engine, &entry).unwrap().is_some(), "rebuilt");
    }

    #[test]
    fn an_entry_copied_under_another_components_name_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let other_component = b"\0asm\x0d\0\x01\0\0\x02\0\0";
        let cache = CompiledCache::new(dir.path().into(), &engine);
        cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
        cache.load_or_compile(&engine, other_component).unwrap();
        let (entry, other) = (cache.entry(EMPTY_COMPONENT), cache.entry(other_component));
        std::fs::copy(&other, &entry).unwrap();
        assert_eq!(
            cache.load(&engine, &entry).err().unwrap(),
            "the cache entry is corrupt (its checksum does not match)"
        );
        cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
        assert!(cache.load(&engine, &entry).unwrap().is_some(), "rebuilt");
    }

    #[test]
    fn partial_writes_of_dead_processes_are_swept_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(format!("{PARTIAL_PREFIX}killed"));
        let fresh = dir.path().join(format!("{PARTIAL_PREFIX}writing"));
        for path in [&stale, &fresh] {
            std::fs::write(path, b"half").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - 2 * STALE_PARTIAL;
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        CompiledCache::new(dir.path().into(), &engine());
        assert!(!stale.exists(), "a dead process's partial write is removed");
        assert!(fresh.exists(), "a write under way elsewhere is left alone");
    }

    #[test]
    fn a_cache_directory_that_is_a_file_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cache");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(
            create_private_dir(&file).unwrap_err().to_string(),
            format!("{} is a file, not a directory", file.display())
        );
    }

    #[test]
    fn entries_differ_by_component_and_by_engine_settings() {
        let dir = tempfile::tempdir().unwrap();
        let plain = engine();
        let metered = wasmtime::Engine::new(wasmtime::Config::new().consume_fuel(true)).unwrap();
        let other_component = b"\0asm\x0d\0\x01\0\0\x02\0\0";
        let a = CompiledCache::new(dir.path().into(), &plain);
        let b = CompiledCache::new(dir.path().into(), &metered);
        assert_ne!(a.entry(EMPTY_COMPONENT), b.entry(EMPTY_COMPONENT));
        assert_ne!(a.entry(EMPTY_COMPONENT), a.entry(other_component));
        assert_eq!(
            a.entry(EMPTY_COMPONENT),
            CompiledCache::new(dir.path().into(), &engine()).entry(EMPTY_COMPONENT)
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompiledCache::new(dir.path().join("c"), &engine);
        cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
        let mode = std::fs::metadata(dir.path().join("c"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
