//! Reading the files an operator names (manifests, scripts, cassettes,
//! prices, components): regular files only, so a FIFO cannot block the host
//! and a device cannot feed it without end, and each kind to its own size.

use bytesize::ByteSize;
use std::io::{self, Read};
use std::path::Path;

/// Largest manifest, script or price table.
pub(crate) const MAX_SETTINGS_FILE: u64 = 16 * 1024 * 1024;
/// Largest cassette of recorded model calls.
pub(crate) const MAX_CASSETTE: u64 = 1024 * 1024 * 1024;
/// Largest component: interpreters compiled in (Python, JavaScript) make tens of MiB.
pub(crate) const MAX_COMPONENT: u64 = 512 * 1024 * 1024;

/// The bytes of the regular file at `path`, when it holds at most `max`.
pub(crate) fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        let kind = if metadata.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}"),
        ));
    }
    let too_large = |size: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it holds {}, over the limit of {}",
                ByteSize(size).display().iec(),
                ByteSize(max).display().iec()
            ),
        )
    };
    if metadata.len() > max {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // The file may grow between the look and the read.
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The text of the regular file at `path`, when it holds at most `max` bytes of UTF-8.
pub(crate) fn read_text_bounded(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_bounded(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_oversized_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("small.toml");
        std::fs::write(&file, "x = 1\n").unwrap();
        assert_eq!(read_text_bounded(&file, 100).unwrap(), "x = 1\n");
        assert_eq!(
            read_bounded(&file, 3).unwrap_err().to_string(),
            "it holds 6 B, over the limit of 3 B"
        );
        assert_eq!(
            read_bounded(dir.path(), 100).unwrap_err().to_string(),
            "it is a directory"
        );
        assert_eq!(
            read_bounded(Path::new("/dev/zero"), 100)
                .unwrap_err()
                .to_string(),
            "it is not a regular file (a FIFO, socket or device)"
        );
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_text_bounded(&file, 100).unwrap_err().to_string(),
            "it is not UTF-8 text"
        );
    }
}
