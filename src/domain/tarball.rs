//! Inspection of an uploaded package tarball (`.tar.gz`).
//!
//! The archive is read once, as a stream, and nothing is written to disk.
//! Every size is measured on the bytes actually inflated, never on what the
//! headers claim, and every limit is enforced while inflating: a gzip bomb
//! costs us at most the limit, not its full expansion.

use std::cell::Cell;
use std::io::{self, Cursor, Read};
use std::rc::Rc;

use flate2::read::GzDecoder;
use tar::EntryType;

use super::{shown, Manifest, ValidationError};

const FIELD: &str = "tarball";
const MANIFEST_NAME: &str = "raven.toml";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUF: usize = 64 * 1024;
/// Longer paths are refused outright: no real package needs them, and it
/// keeps the per-entry bookkeeping bounded.
const MAX_PATH_BYTES: usize = 4096;
/// Inflated bytes that are not file data (headers, padding, GNU long names,
/// pax records) allowed per entry, plus a fixed slack for end-of-archive
/// padding. Bounding these separately stops an archive from smuggling a huge
/// "long name" into memory before any file data is counted.
const OVERHEAD_PER_ENTRY: u64 = 16 * 1024;
const OVERHEAD_SLACK: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarballLimits {
    /// Total file data once unpacked.
    pub max_unpacked_bytes: u64,
    /// Entries of any kind, directories included.
    pub max_entries: u64,
    pub max_manifest_bytes: u64,
    /// A bigger README is dropped, not refused.
    pub max_readme_bytes: u64,
}

impl Default for TarballLimits {
    fn default() -> Self {
        Self {
            max_unpacked_bytes: 256 * 1024 * 1024,
            max_entries: 10_000,
            max_manifest_bytes: 64 * 1024,
            max_readme_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarballContents {
    pub manifest: Manifest,
    pub readme: Option<String>,
    pub entries: u64,
    /// Bytes of entry data actually read.
    pub unpacked_bytes: u64,
}

/// Validates a package tarball; `reader` yields the compressed bytes.
pub fn inspect_tarball<R: Read>(mut reader: R, limits: &TarballLimits) -> Result<TarballContents, ValidationError> {
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(|e| corrupt(&e))?;
    if got == 0 {
        return Err(refuse("tarball is empty"));
    }
    if magic[..got] != GZIP_MAGIC {
        return Err(refuse("tarball is not gzip-compressed"));
    }

    let meter = Rc::new(Meter::default());
    let inflated = MeteredReader { inner: GzDecoder::new(Cursor::new(magic).chain(reader)), meter: Rc::clone(&meter) };
    let mut archive = tar::Archive::new(inflated);
    let mut scan = Scan::new(limits, meter);
    scan.update_allowance();

    let entries = archive.entries().map_err(|e| scan.io_error(&e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| scan.io_error(&e))?;
        scan.entry(&mut entry)?;
    }
    // tar stops at its end-of-archive marker; reading the gzip stream to its
    // end is what verifies the CRC and catches truncation and trailing bombs.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| scan.io_error(&e))?;

    scan.finish()
}

fn refuse(message: impl Into<String>) -> ValidationError {
    ValidationError::new(FIELD, message)
}

/// Includes the error's sources: the tar crate wraps the useful detail
/// ("archive header checksum mismatch") under a generic description.
/// The detail is capped because the tar crate quotes header bytes in it.
fn corrupt(e: &io::Error) -> ValidationError {
    const MAX_DETAIL_CHARS: usize = 200;
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = s.source();
    }
    if detail.chars().count() > MAX_DETAIL_CHARS {
        detail = detail.chars().take(MAX_DETAIL_CHARS).collect::<String>() + "...";
    }
    refuse(format!("tarball is corrupt: {detail}"))
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Shared between the reader under `tar::Archive` and the scan, which raises
/// the allowance as it accounts for entries and file data.
#[derive(Default)]
struct Meter {
    inflated: Cell<u64>,
    allowance: Cell<u64>,
    tripped: Cell<bool>,
}

/// Counts every inflated byte and fails the read once the total goes past
/// what the archive's entries can justify.
struct MeteredReader<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for MeteredReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.meter.inflated.get().saturating_add(n as u64);
        self.meter.inflated.set(total);
        if total > self.meter.allowance.get() {
            self.meter.tripped.set(true);
            return Err(io::Error::other("inflated size limit exceeded"));
        }
        Ok(n)
    }
}

/// Which top-level path components the archive has used so far.
enum Top {
    Nothing,
    /// Every entry lives under this one directory.
    Single(String),
    /// Files at the root, or several top-level components.
    Mixed,
}

/// A file whose content may be needed once the root is known.
enum Kept {
    Data(Vec<u8>),
    TooLarge,
}

struct Readme {
    exact_name: bool,
    content: Kept,
}

struct Scan<'l> {
    limits: &'l TarballLimits,
    meter: Rc<Meter>,
    entries: u64,
    unpacked: u64,
    /// (normalised path, is_dir) of every entry, checked for clashes at the end.
    paths: Vec<(String, bool)>,
    top: Top,
    // Candidates at the literal root and one level down; which pair counts
    // is only known after the last entry.
    root_manifest: Option<Kept>,
    nested_manifest: Option<Kept>,
    root_readme: Option<Readme>,
    nested_readme: Option<Readme>,
    buf: Vec<u8>,
}

impl<'l> Scan<'l> {
    fn new(limits: &'l TarballLimits, meter: Rc<Meter>) -> Self {
        Self {
            limits,
            meter,
            entries: 0,
            unpacked: 0,
            paths: Vec::new(),
            top: Top::Nothing,
            root_manifest: None,
            nested_manifest: None,
            root_readme: None,
            nested_readme: None,
            buf: vec![0; READ_BUF],
        }
    }

    /// File data read so far, plus one read buffer in flight, plus the
    /// metadata overhead allowed for the entries seen and the next one.
    fn update_allowance(&self) {
        let allowance = self
            .unpacked
            .saturating_add(READ_BUF as u64)
            .saturating_add(OVERHEAD_PER_ENTRY.saturating_mul(self.entries.saturating_add(1)))
            .saturating_add(OVERHEAD_SLACK);
        self.meter.allowance.set(allowance);
    }

    fn too_big(&self) -> ValidationError {
        refuse(format!("tarball exceeds the unpacked size limit of {} bytes", self.limits.max_unpacked_bytes))
    }

    fn io_error(&self, e: &io::Error) -> ValidationError {
        if self.meter.tripped.get() {
            refuse(format!(
                "tarball exceeds the unpacked size limit: it inflates to more data than its \
                 entries account for (over {} bytes)",
                self.meter.allowance.get()
            ))
        } else {
            corrupt(e)
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ValidationError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(refuse(format!("tarball has more than {} entries (the entry limit)", self.limits.max_entries)));
        }
        self.update_allowance();

        let raw_path = entry.path_bytes().into_owned();
        let is_dir = match entry.header().entry_type() {
            EntryType::Regular => false,
            EntryType::Directory => true,
            // `git archive` writes one of these (the commit id); it describes
            // the archive, not a file, so it is read and otherwise ignored.
            EntryType::XGlobalHeader => return self.drain(entry, None).map(drop),
            other => {
                let kind = match other {
                    EntryType::Symlink => "a symlink".to_owned(),
                    EntryType::Link => "a hard link".to_owned(),
                    EntryType::Char => "a character device".to_owned(),
                    EntryType::Block => "a block device".to_owned(),
                    EntryType::Fifo => "a FIFO".to_owned(),
                    other => format!("of unsupported type {:?}", other.as_byte() as char),
                };
                return Err(refuse(format!(
                    "tarball entry {} is {kind}: only regular files and directories are allowed",
                    shown(&String::from_utf8_lossy(&raw_path))
                )));
            }
        };

        let path = normalize_path(&raw_path)?;
        if path.is_empty() {
            // "./" as written by `tar -C dir .`; a file cannot have no name.
            if !is_dir {
                return Err(refuse("tarball entry has an empty path"));
            }
            return self.drain(entry, None).map(drop);
        }
        let components: Vec<&str> = path.split('/').collect();
        self.note_top(components[0], is_dir || components.len() > 1);

        let keep = if is_dir { None } else { self.wanted(&components)? };
        let max_keep = match keep {
            Some(Want::Manifest(_)) => Some(self.limits.max_manifest_bytes),
            Some(Want::Readme(..)) => Some(self.limits.max_readme_bytes),
            None => None,
        };
        let kept = self.drain(entry, max_keep)?;
        match (keep, kept) {
            (Some(Want::Manifest(root)), Some(kept)) => {
                *self.manifest_slot(root) = Some(kept);
            }
            (Some(Want::Readme(root, exact_name)), Some(content)) => {
                *self.readme_slot(root) = Some(Readme { exact_name, content });
            }
            _ => {}
        }
        self.paths.push((path, is_dir));
        Ok(())
    }

    fn note_top(&mut self, first: &str, is_dir: bool) {
        self.top = match &self.top {
            _ if !is_dir => Top::Mixed,
            Top::Nothing => Top::Single(first.to_owned()),
            Top::Single(s) if s == first => return,
            _ => Top::Mixed,
        };
        if matches!(self.top, Top::Mixed) {
            // One level down can no longer be the root: free what was kept.
            self.nested_manifest = None;
            self.nested_readme = None;
        }
    }

    /// Whether this file's content must be kept, and as what. At most one
    /// README per level is buffered, whatever the archive holds.
    fn wanted(&mut self, components: &[&str]) -> Result<Option<Want>, ValidationError> {
        let root = match components.len() {
            1 => true,
            2 if matches!(self.top, Top::Single(_)) => false,
            _ => return Ok(None),
        };
        let name = components[components.len() - 1];
        if name == MANIFEST_NAME {
            if self.manifest_slot(root).is_some() {
                return Err(refuse(format!(
                    "duplicate raven.toml: {} appears more than once",
                    shown(&components.join("/"))
                )));
            }
            return Ok(Some(Want::Manifest(root)));
        }
        if name.eq_ignore_ascii_case("readme.md") {
            let exact_name = name == "README.md";
            let replace = match self.readme_slot(root) {
                None => true,
                Some(held) => exact_name && !held.exact_name,
            };
            return Ok(replace.then_some(Want::Readme(root, exact_name)));
        }
        Ok(None)
    }

    fn manifest_slot(&mut self, root: bool) -> &mut Option<Kept> {
        if root {
            &mut self.root_manifest
        } else {
            &mut self.nested_manifest
        }
    }

    fn readme_slot(&mut self, root: bool) -> &mut Option<Readme> {
        if root {
            &mut self.root_readme
        } else {
            &mut self.nested_readme
        }
    }

    /// Reads the entry's data to its end, counting every byte against the
    /// unpacked limit, and keeps up to `max_keep` bytes of it if asked.
    fn drain<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        max_keep: Option<u64>,
    ) -> Result<Option<Kept>, ValidationError> {
        let declared = entry.size();
        let mut kept = max_keep.map(|max| {
            if declared > max {
                Kept::TooLarge
            } else {
                // The header's size is only a hint; never let it size an allocation.
                Kept::Data(Vec::with_capacity(declared.min(READ_BUF as u64) as usize))
            }
        });
        let mut read = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(&e)),
            };
            read += n as u64;
            self.unpacked += n as u64;
            if self.unpacked > self.limits.max_unpacked_bytes {
                return Err(self.too_big());
            }
            self.update_allowance();
            if let (Some(Kept::Data(data)), Some(max)) = (&mut kept, max_keep) {
                if data.len() as u64 + n as u64 > max {
                    kept = Some(Kept::TooLarge);
                } else {
                    data.extend_from_slice(&self.buf[..n]);
                }
            }
        }
        if read < declared {
            return Err(refuse(format!(
                "tarball is corrupt: entry {} is truncated",
                shown(&String::from_utf8_lossy(&entry.path_bytes()))
            )));
        }
        Ok(kept)
    }

    fn finish(mut self) -> Result<TarballContents, ValidationError> {
        if self.entries == 0 {
            return Err(refuse("tarball is empty: it contains no entries"));
        }
        check_path_clashes(&mut self.paths)?;

        let prefixed = matches!(self.top, Top::Single(_)) && self.root_manifest.is_none();
        let (manifest, readme) =
            if prefixed { (self.nested_manifest, self.nested_readme) } else { (self.root_manifest, self.root_readme) };
        let manifest = match manifest {
            None => return Err(refuse("missing raven.toml at the archive root")),
            Some(Kept::TooLarge) => {
                return Err(refuse(format!("raven.toml is larger than {} bytes", self.limits.max_manifest_bytes)))
            }
            Some(Kept::Data(bytes)) => String::from_utf8(bytes).map_err(|_| refuse("raven.toml is not valid UTF-8"))?,
        };
        let manifest = Manifest::parse(&manifest)?;
        // An oversized or non-UTF-8 README is not worth refusing a package over.
        let readme = match readme.map(|r| r.content) {
            Some(Kept::Data(bytes)) => String::from_utf8(bytes).ok(),
            _ => None,
        };
        Ok(TarballContents { manifest, readme, entries: self.entries, unpacked_bytes: self.unpacked })
    }
}

enum Want {
    /// true: at the literal root; false: one directory down.
    Manifest(bool),
    Readme(bool, bool),
}

/// Turns an entry path into `a/b/c` form, refusing anything that could
/// escape the extraction directory or means different things on different
/// systems. `.` and empty components are dropped, so `./a//b` is `a/b`.
fn normalize_path(raw: &[u8]) -> Result<String, ValidationError> {
    let lossy = || shown(&String::from_utf8_lossy(raw));
    let bad = |why: &str| Err(refuse(format!("tarball entry path {} {why}", lossy())));
    let Ok(path) = std::str::from_utf8(raw) else {
        return bad("is not valid UTF-8");
    };
    if path.len() > MAX_PATH_BYTES {
        return bad(&format!("is longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.contains('\0') {
        return bad("contains a NUL byte");
    }
    if path.contains('\\') {
        return bad("contains a backslash");
    }
    if path.starts_with('/') {
        return bad("is absolute");
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if components.contains(&"..") {
        return bad("contains a '..' component");
    }
    if let Some(first) = components.first() {
        let b = first.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return bad("starts with a Windows drive prefix");
        }
    }
    Ok(components.join("/"))
}

/// Refuses a file path listed twice, and a path that is both a file and a
/// directory (`a` as a file next to `a/b`): either would make extraction
/// depend on the order or the tool.
fn check_path_clashes(paths: &mut [(String, bool)]) -> Result<(), ValidationError> {
    // Ordering by components puts every path right before its descendants,
    // so both kinds of clash show up between neighbours.
    paths.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
    for pair in paths.windows(2) {
        let ((a, a_dir), (b, b_dir)) = (&pair[0], &pair[1]);
        if a == b {
            if *a_dir && *b_dir {
                continue;
            }
            if !*a_dir && !*b_dir {
                return Err(refuse(format!("tarball has a duplicate path {}", shown(a))));
            }
        } else if *a_dir || !b.starts_with(a.as_str()) || !b[a.len()..].starts_with('/') {
            continue;
        }
        return Err(refuse(format!("tarball path {} is both a file and a directory", shown(a))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    use tar::{Builder, Header};

    const MANIFEST: &str = "[package]\nname = \"http-client\"\nversion = \"1.2.0\"\nauthors = [\"Ada\"]\n";

    /// One archive member: (path, type, data). Paths are written into the
    /// header verbatim, so hostile names can be expressed.
    type Member<'a> = (&'a str, EntryType, &'a [u8]);

    fn tar_bytes(members: &[Member]) -> Vec<u8> {
        let mut builder = Builder::new(Vec::new());
        for (path, kind, data) in members {
            let mut header = Header::new_gnu();
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*kind);
            header.set_mode(if *kind == EntryType::Directory { 0o755 } else { 0o644 });
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn targz(members: &[Member]) -> Vec<u8> {
        gzip(&tar_bytes(members))
    }

    fn file<'a>(path: &'a str, data: &'a [u8]) -> Member<'a> {
        (path, EntryType::Regular, data)
    }

    fn dir(path: &str) -> Member<'_> {
        (path, EntryType::Directory, b"")
    }

    fn inspect(bytes: &[u8]) -> Result<TarballContents, ValidationError> {
        inspect_tarball(bytes, &TarballLimits::default())
    }

    fn refused_with(bytes: &[u8], limits: &TarballLimits, field: &str, needle: &str) {
        let e = inspect_tarball(bytes, limits).expect_err(needle);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(needle), "expected {needle:?} in {e}");
    }

    fn refused(bytes: &[u8], needle: &str) {
        refused_with(bytes, &TarballLimits::default(), "tarball", needle);
    }

    #[test]
    fn valid_package_passes() {
        let bytes = targz(&[
            file("raven.toml", MANIFEST.as_bytes()),
            file("README.md", b"# Hello"),
            dir("src/"),
            file("src/lib.rvn", b"fn main() {}"),
            file("examples/raven.toml", b"not even toml ["),
        ]);
        let c = inspect(&bytes).unwrap();
        assert_eq!(c.manifest.name.as_str(), "http-client");
        assert_eq!(c.manifest.version.to_string(), "1.2.0");
        assert_eq!(c.readme.as_deref(), Some("# Hello"));
        assert_eq!(c.entries, 5);
        assert_eq!(c.unpacked_bytes, (MANIFEST.len() + 7 + 12 + 15) as u64);
    }

    #[test]
    fn archives_built_with_the_tar_builder_pass() {
        let mut builder = Builder::new(Vec::new());
        let long = format!("pkg-1.2.0/{}/deep.rvn", "d".repeat(150));
        for (path, data) in [
            ("pkg-1.2.0/raven.toml", MANIFEST.as_bytes()),
            ("pkg-1.2.0/readme.md", b"lower".as_slice()),
            (long.as_str(), b"x".as_slice()),
        ] {
            let mut header = Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, data).unwrap();
        }
        let c = inspect(&gzip(&builder.into_inner().unwrap())).unwrap();
        assert_eq!(c.manifest.name.as_str(), "http-client");
        assert_eq!(c.readme.as_deref(), Some("lower"));
        assert_eq!(c.entries, 3, "GNU long-name headers are not entries");
    }

    #[test]
    fn single_top_level_directory_is_the_root() {
        let bytes = targz(&[
            dir("pkg-1.2.0/"),
            file("pkg-1.2.0/raven.toml", MANIFEST.as_bytes()),
            file("pkg-1.2.0/Readme.md", b"other case"),
            file("pkg-1.2.0/README.md", b"preferred"),
            file("pkg-1.2.0/src/raven.toml", b"ignored"),
        ]);
        let c = inspect(&bytes).unwrap();
        assert_eq!(c.manifest.name.as_str(), "http-client");
        assert_eq!(c.readme.as_deref(), Some("preferred"));
    }

    #[test]
    fn dot_slash_paths_are_the_literal_root() {
        let bytes = targz(&[dir("./"), file("./raven.toml", MANIFEST.as_bytes())]);
        assert_eq!(inspect(&bytes).unwrap().manifest.name.as_str(), "http-client");
    }

    #[test]
    fn manifest_one_level_down_does_not_count_with_several_top_directories() {
        let bytes = targz(&[file("a/raven.toml", MANIFEST.as_bytes()), file("b/x", b"")]);
        refused(&bytes, "missing raven.toml at the archive root");
        let bytes = targz(&[file("a/raven.toml", MANIFEST.as_bytes()), file("x", b"")]);
        refused(&bytes, "missing raven.toml at the archive root");
    }

    #[test]
    fn missing_manifest_is_refused() {
        refused(&targz(&[file("README.md", b"hi")]), "missing raven.toml at the archive root");
        refused(&targz(&[dir("pkg/")]), "missing raven.toml at the archive root");
    }

    #[test]
    fn duplicate_manifest_is_refused() {
        let m = MANIFEST.as_bytes();
        refused(&targz(&[file("raven.toml", m), file("raven.toml", m)]), "duplicate raven.toml");
        refused(&targz(&[file("raven.toml", m), file("./raven.toml", m)]), "duplicate raven.toml");
        refused(&targz(&[file("p/raven.toml", m), file("p//raven.toml", m)]), "duplicate raven.toml");
    }

    #[test]
    fn duplicate_paths_and_file_directory_clashes_are_refused() {
        let m = MANIFEST.as_bytes();
        refused(&targz(&[file("raven.toml", m), file("a", b""), file("a", b"")]), "duplicate path");
        refused(&targz(&[file("raven.toml", m), file("a", b""), file("a/b", b"")]), "both a file");
        refused(&targz(&[file("raven.toml", m), dir("a/"), file("a", b"")]), "both a file");
        let ok = targz(&[file("raven.toml", m), dir("a/"), dir("a/"), file("a-b", b""), file("a/b", b"")]);
        assert!(inspect(&ok).is_ok());
    }

    #[test]
    fn not_gzip_is_refused() {
        refused(&tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())]), "not gzip-compressed");
        refused(b"\x1f", "not gzip-compressed");
        refused(b"PK\x03\x04", "not gzip-compressed");
        refused(b"", "tarball is empty");
    }

    #[test]
    fn corrupt_archives_are_refused() {
        let good = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("b", &[7; 5000])]);
        refused(&good[..good.len() / 2], "tarball is corrupt");
        refused(&good[..good.len() - 4], "tarball is corrupt");
        let mut bad_crc = good.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 0xff;
        refused(&bad_crc, "tarball is corrupt");
        refused(&gzip(&[b'x'; 2048]), "tarball is corrupt: ");
        refused(&[0x1f, 0x8b, 0, 0, 0], "tarball is corrupt");
        // A tar cut inside an entry's data, then properly gzipped.
        let tar = tar_bytes(&[file("raven.toml", MANIFEST.as_bytes()), file("b", &[7; 5000])]);
        refused(&gzip(&tar[..512 * 3 + 100]), "tarball is corrupt");
    }

    #[test]
    fn empty_archive_is_refused() {
        refused(&gzip(&tar_bytes(&[])), "tarball is empty");
        refused(&gzip(b""), "tarball is empty");
    }

    #[test]
    fn links_devices_and_fifos_are_refused() {
        for (kind, needle) in [
            (EntryType::Symlink, "is a symlink"),
            (EntryType::Link, "is a hard link"),
            (EntryType::Char, "is a character device"),
            (EntryType::Block, "is a block device"),
            (EntryType::Fifo, "is a FIFO"),
            (EntryType::Continuous, "of unsupported type '7'"),
        ] {
            let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), ("evil", kind, b"")]);
            refused(&bytes, needle);
            refused(&bytes, "only regular files and directories are allowed");
        }
    }

    #[test]
    fn escaping_and_unportable_paths_are_refused() {
        let m = MANIFEST.as_bytes();
        for (path, needle) in [
            ("../evil", "contains a '..' component"),
            ("a/../../evil", "contains a '..' component"),
            ("a/..", "contains a '..' component"),
            ("/abs", "is absolute"),
            ("//abs", "is absolute"),
            ("C:/evil", "Windows drive prefix"),
            ("c:evil", "Windows drive prefix"),
            ("a\\..\\evil", "contains a backslash"),
        ] {
            refused(&targz(&[file("raven.toml", m), file(path, b"x")]), needle);
        }
        let mut tar = tar_bytes(&[file("raven.toml", m), file("bad-\u{e9}", b"")]);
        // Turn the UTF-8 sequence for 'é' into an invalid byte.
        let pos = tar.windows(2).position(|w| w == "\u{e9}".as_bytes()).unwrap();
        tar[pos] = 0xff;
        let mut header = Header::from_byte_slice(&tar[512 * 2..512 * 3]).clone();
        header.set_cksum();
        tar[512 * 2..512 * 3].copy_from_slice(header.as_bytes());
        refused(&gzip(&tar), "is not valid UTF-8");
        refused(&targz(&[file(".", b"x"), file("raven.toml", m)]), "empty path");
    }

    /// A pax `path` record overrides the header name; that is the path that
    /// must be checked.
    #[test]
    fn pax_paths_are_checked() {
        let record = "16 path=../evil\n";
        assert_eq!(record.len(), 16);
        let mut builder = Builder::new(Vec::new());
        let mut pax = Header::new_ustar();
        pax.set_path("PaxHeaders/safe").unwrap();
        pax.set_entry_type(EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        builder.append(&pax, record.as_bytes()).unwrap();
        let mut safe = Header::new_ustar();
        safe.set_path("safe").unwrap();
        safe.set_size(0);
        safe.set_cksum();
        builder.append(&safe, io::empty()).unwrap();
        refused(&gzip(&builder.into_inner().unwrap()), "contains a '..' component");
    }

    #[test]
    fn pax_global_header_is_ignored() {
        let bytes = targz(&[
            ("pax_global_header", EntryType::XGlobalHeader, b"52 comment=0123456789012345678901234567890123456789\n"),
            dir("pkg/"),
            file("pkg/raven.toml", MANIFEST.as_bytes()),
        ]);
        assert_eq!(inspect(&bytes).unwrap().manifest.name.as_str(), "http-client");
    }

    #[test]
    fn too_many_entries_are_refused() {
        let limits = TarballLimits { max_entries: 3, ..TarballLimits::default() };
        let m = MANIFEST.as_bytes();
        let ok = targz(&[file("raven.toml", m), file("a", b""), file("b", b"")]);
        assert_eq!(inspect_tarball(ok.as_slice(), &limits).unwrap().entries, 3);
        let bytes = targz(&[file("raven.toml", m), file("a", b""), file("b", b""), file("c", b"")]);
        refused_with(&bytes, &limits, "tarball", "more than 3 entries");
    }

    /// Wraps the compressed input to see how much of it was consumed.
    struct Consumed<'a>(&'a [u8], Rc<Cell<usize>>);

    impl Read for Consumed<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1.set(self.1.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn gzip_bomb_is_refused_while_inflating() {
        // 128 MiB of zeros, streamed into the encoder to keep the test light.
        const BOMB: u64 = 128 * 1024 * 1024;
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())])[..1024]).unwrap();
        gz.write_all(tar_header("bomb", BOMB).as_bytes()).unwrap();
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..BOMB / zeros.len() as u64 {
            gz.write_all(&zeros).unwrap();
        }
        gz.write_all(&[0; 1024]).unwrap();
        let bytes = gz.finish().unwrap();
        assert!(bytes.len() > 100 * 1024, "{}", bytes.len());

        let limits = TarballLimits { max_unpacked_bytes: 1024 * 1024, ..TarballLimits::default() };
        let consumed = Rc::new(Cell::new(0));
        let e = inspect_tarball(Consumed(&bytes, Rc::clone(&consumed)), &limits).unwrap_err();
        assert_eq!(e.field, "tarball");
        assert!(e.message.contains("unpacked size limit of 1048576 bytes"), "{e}");
        // Refused after inflating about the limit, not the whole stream.
        assert!(consumed.get() < bytes.len() / 3, "read {} of {}", consumed.get(), bytes.len());
    }

    #[test]
    fn many_small_files_add_up_to_the_limit() {
        let chunk = vec![1u8; 300 * 1024];
        let names = ["a", "b", "c", "d"];
        let mut members = vec![file("raven.toml", MANIFEST.as_bytes())];
        members.extend(names.iter().map(|n| file(n, &chunk)));
        let limits = TarballLimits { max_unpacked_bytes: 1024 * 1024, ..TarballLimits::default() };
        refused_with(&targz(&members), &limits, "tarball", "unpacked size limit");
        members.pop();
        assert!(inspect_tarball(targz(&members).as_slice(), &limits).is_ok());
    }

    #[test]
    fn data_after_the_archive_end_is_counted() {
        let mut tar = tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())]);
        tar.extend(std::iter::repeat_n(0u8, 8 * 1024 * 1024));
        refused(&gzip(&tar), "unpacked size limit");
    }

    #[test]
    fn huge_gnu_long_name_is_refused_before_it_fills_memory() {
        let name = vec![b'a'; 4 * 1024 * 1024];
        let mut builder = Builder::new(Vec::new());
        let mut long = Header::new_gnu();
        long.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(EntryType::GNULongName);
        long.set_size(name.len() as u64);
        long.set_cksum();
        builder.append(&long, name.as_slice()).unwrap();
        builder.append(&tar_header("x", 0), io::empty()).unwrap();
        refused(&gzip(&builder.into_inner().unwrap()), "unpacked size limit");
    }

    fn tar_header(path: &str, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_cksum();
        h
    }

    #[test]
    fn manifest_limits_and_errors() {
        let limits = TarballLimits { max_manifest_bytes: 16, ..TarballLimits::default() };
        let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes())]);
        refused_with(&bytes, &limits, "tarball", "raven.toml is larger than 16 bytes");
        refused(&targz(&[file("raven.toml", b"\xff\xfe")]), "raven.toml is not valid UTF-8");
        let bad_name = MANIFEST.replace("http-client", "Http");
        refused_with(
            &targz(&[file("raven.toml", bad_name.as_bytes())]),
            &TarballLimits::default(),
            "name",
            "lowercase",
        );
        refused_with(
            &targz(&[file("raven.toml", b"[package")]),
            &TarballLimits::default(),
            "raven.toml",
            "invalid TOML",
        );
    }

    #[test]
    fn oversized_or_binary_readme_is_dropped_not_refused() {
        let limits = TarballLimits { max_readme_bytes: 4, ..TarballLimits::default() };
        let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("README.md", b"12345")]);
        let c = inspect_tarball(bytes.as_slice(), &limits).unwrap();
        assert_eq!(c.readme, None);
        let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("README.md", b"\xff")]);
        assert_eq!(inspect(&bytes).unwrap().readme, None);
        let bytes = targz(&[file("raven.toml", MANIFEST.as_bytes()), file("docs/README.md", b"x")]);
        assert_eq!(inspect(&bytes).unwrap().readme, None, "only the root README counts");
    }

    /// Arbitrary bytes must give an error, never a panic. Mutates a valid
    /// archive both before compression (to reach the tar parser) and after.
    #[test]
    fn mutated_archives_never_panic() {
        let tar =
            tar_bytes(&[dir("pkg/"), file("pkg/raven.toml", MANIFEST.as_bytes()), file("pkg/README.md", b"hello")]);
        let gz = gzip(&tar);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..1500 {
            let (mut bytes, compress) = if round % 2 == 0 { (tar.clone(), true) } else { (gz.clone(), false) };
            for _ in 0..=(next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            if next() % 8 == 0 {
                bytes.truncate((next() % bytes.len() as u64) as usize);
            }
            let input = if compress { gzip(&bytes) } else { bytes };
            if let Err(e) = inspect(&input) {
                assert!(!e.message.is_empty());
            }
        }
    }
}
