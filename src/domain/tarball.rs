//! Inspection of an uploaded package tarball (`.tar.gz`).
//!
//! The archive is read once, as a stream, and nothing is written to disk.
//! Every size is measured on the bytes actually inflated, never on what the
//! headers claim, and every limit is enforced while inflating: a gzip bomb
//! costs us at most the limit, not its full expansion.
//!
//! The bytes that are checked are the bytes that are stored and served, and
//! they must mean the same thing to every extractor (GNU tar, bsdtar,
//! Python's tarfile, the `tar` crate). Anything extractors read differently
//! is refused rather than interpreted:
//!
//! - exactly one gzip member, and nothing after it: not a second member
//!   (`gzip -d`, GNU tar and Python read every member), not zero padding, not
//!   other bytes (GNU tar exits 2 on those). Zero padding is harmless to
//!   extractors, but no archiver writes it and the stored blob is meant to be
//!   the gzip stream alone;
//! - after the tar end-of-archive block, only zeros (`tar --ignore-zeros`
//!   would read entries hidden there);
//! - headers are read one by one (the `tar` crate's raw mode) and the
//!   extension headers are applied here, the way extractors apply them: a GNU
//!   long name (`L`) or a pax `path` record replaces the header name, and that
//!   effective path is what every check judges. Combinations extractors
//!   resolve differently are refused: a long name and a pax `path` for one
//!   entry, two extension headers of a kind for one entry, a pax `size` that
//!   disagrees with the header, duplicate or malformed pax records, a global
//!   header between an extension header and its entry;
//! - pax records are allow-listed. A global header (`g`) applies to every
//!   later entry in GNU tar and Python, so it may only carry descriptive
//!   records (`comment`, as `git archive` writes, times and owners); `path`,
//!   `linkpath`, `size` and anything else is refused. A local header (`x`) may
//!   also carry `path`, `size` (equal to the header's), `hdrcharset` (UTF-8)
//!   and `user.*` / `com.apple.*` extended attributes; `GNU.sparse.*` (which
//!   renames the entry in GNU tar and Python), `linkpath`, ACLs, other
//!   extended attributes and unknown records are refused;
//! - the ustar prefix field of a header that is not ustar (Python prepends
//!   it, GNU tar and the `tar` crate ignore it) must be empty, and the name
//!   an extractor ignoring pax would use must be safe as well;
//! - entry paths must not collide once case, Unicode normalisation (NFC vs
//!   NFD) and Windows' trailing dots and spaces are ignored: `raven.toml` and
//!   `RAVEN.TOML` are one file on macOS and Windows.

use std::cell::Cell;
use std::collections::hash_map::{Entry as Slot, HashMap};
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::rc::Rc;

use flate2::bufread::GzDecoder;
use tar::EntryType;
use unicode_normalization::UnicodeNormalization;

use super::{shown, Manifest, ValidationError};

const FIELD: &str = "tarball";
const MANIFEST_NAME: &str = "raven.toml";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUF: usize = 64 * 1024;
/// Compressed bytes read ahead of the inflater.
const COMPRESSED_BUF: usize = 16 * 1024;
/// Longer paths are refused outright: no real package needs them, and it
/// keeps the per-entry bookkeeping bounded.
const MAX_PATH_BYTES: usize = 4096;
/// The records of one pax header: a path of MAX_PATH_BYTES and a few
/// attributes fit with room to spare.
const MAX_PAX_BYTES: u64 = 8 * 1024;
/// Inflated bytes that are not file data (headers, padding, GNU long names,
/// pax records) allowed per entry, plus a fixed slack for end-of-archive
/// padding. Bounding these separately stops an archive from smuggling a huge
/// "long name" into memory before any file data is counted.
const OVERHEAD_PER_ENTRY: u64 = 16 * 1024;
const OVERHEAD_SLACK: u64 = 1024 * 1024;
/// Offset of the ustar `prefix` field in a header block.
const PREFIX_OFFSET: usize = 345;
/// The only `hdrcharset` value accepted: names are UTF-8.
const HDRCHARSET_UTF8: &[u8] = b"ISO-IR 10646 2000 UTF-8";

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

/// Validates a package tarball; `reader` yields the compressed bytes. On
/// success every byte of `reader` has been read.
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
    let compressed = BufReader::with_capacity(COMPRESSED_BUF, Cursor::new(magic).chain(reader));
    let gzip = OneMember { inner: GzDecoder::new(compressed), meter: Rc::clone(&meter) };
    let inflated = MeteredReader { inner: gzip, meter: Rc::clone(&meter) };
    let mut archive = tar::Archive::new(inflated);
    let mut scan = Scan::new(limits, meter);
    scan.update_allowance();

    // Raw: every header comes back as it is, extension headers included, and
    // the scan applies them itself (see the module documentation).
    let entries = archive.entries().map_err(|e| scan.io_error(&e))?.raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| scan.io_error(&e))?;
        scan.header(&mut entry)?;
    }
    if let Some(what) = scan.pending.describe() {
        return Err(refuse(format!("tarball ends with {what} that describes no entry")));
    }
    // tar stops at its end-of-archive block. What follows inside the gzip
    // stream must be zeros; reading it to its end also verifies the CRC,
    // catches truncation, and (in `OneMember`) anything after the stream.
    let mut rest = archive.into_inner();
    scan.zeros_to_end(&mut rest)?;

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

fn lossy(bytes: &[u8]) -> String {
    shown(&String::from_utf8_lossy(bytes))
}

/// Shared between the readers under `tar::Archive` and the scan, which raises
/// the allowance as it accounts for entries and file data.
#[derive(Default)]
struct Meter {
    inflated: Cell<u64>,
    allowance: Cell<u64>,
    tripped: Cell<bool>,
    /// What follows the first gzip member, once its end is reached.
    trailing: Cell<Option<&'static str>>,
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

/// One gzip member, which must end the input. `bufread::GzDecoder` stops at
/// the end of the first member (after checking its CRC and length) and leaves
/// what follows unread, so it can be looked at: whether the tar stream ended
/// there or is cut (and perhaps continued in a second member), the upload is
/// refused for the bytes after the member, which is the real problem.
struct OneMember<R> {
    inner: GzDecoder<R>,
    meter: Rc<Meter>,
}

impl<R: BufRead> Read for OneMember<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let after = self.inner.get_mut().fill_buf()?;
            if !after.is_empty() {
                let what = if after.starts_with(&GZIP_MAGIC) {
                    "a second gzip member"
                } else if after.iter().all(|b| *b == 0) {
                    "zero padding"
                } else {
                    "data that is not gzip"
                };
                self.meter.trailing.set(Some(what));
                return Err(io::Error::other("bytes after the gzip stream"));
            }
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

/// Extension headers read so far, which describe the next entry.
#[derive(Default)]
struct Pending {
    /// The name from a GNU long-name (`L`) header.
    long_name: Option<Vec<u8>>,
    /// The records of a pax extended (`x`) header.
    pax: Option<LocalPax>,
}

#[derive(Default)]
struct LocalPax {
    path: Option<Vec<u8>>,
    size: Option<u64>,
}

impl Pending {
    fn describe(&self) -> Option<&'static str> {
        match (&self.long_name, &self.pax) {
            (None, None) => None,
            (Some(_), _) => Some("a GNU long-name header"),
            (None, Some(_)) => Some("a pax extended header"),
        }
    }
}

/// One component of the path tree, under its folded name.
struct Node {
    /// The component as written.
    exact: String,
    is_file: bool,
    children: HashMap<String, Node>,
}

struct Scan<'l> {
    limits: &'l TarballLimits,
    meter: Rc<Meter>,
    entries: u64,
    unpacked: u64,
    pending: Pending,
    /// Every path seen, by folded component: clashes are found as entries
    /// arrive, and the storage is bounded by the bytes of the paths.
    tree: HashMap<String, Node>,
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
            pending: Pending::default(),
            tree: HashMap::new(),
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
        if let Some(what) = self.meter.trailing.get() {
            refuse(format!(
                "tarball has {what} after the end of its gzip stream: an upload must be exactly one gzip \
                 stream, since extractors would read bytes the check did not (or fail on them)"
            ))
        } else if self.meter.tripped.get() {
            refuse(format!(
                "tarball exceeds the unpacked size limit: it inflates to more data than its \
                 entries account for (over {} bytes)",
                self.meter.allowance.get()
            ))
        } else {
            corrupt(e)
        }
    }

    fn count_entry(&mut self) -> Result<(), ValidationError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(refuse(format!("tarball has more than {} entries (the entry limit)", self.limits.max_entries)));
        }
        self.update_allowance();
        Ok(())
    }

    /// One header of the raw stream: an extension header is remembered for
    /// the entry it describes, an entry is checked under its effective path.
    fn header<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ValidationError> {
        let header_path = entry.header().path_bytes().into_owned();
        check_prefix_field(entry.header(), &header_path)?;
        match entry.header().entry_type() {
            EntryType::GNULongName => {
                check_shadow_name(&header_path, "GNU long-name header")?;
                if self.pending.long_name.is_some() {
                    return Err(refuse(format!(
                        "tarball has two GNU long-name headers in a row ({}): extractors disagree on which applies",
                        lossy(&header_path)
                    )));
                }
                let data = self.read_meta(entry, MAX_PATH_BYTES as u64 + 1, "GNU long-name header", &header_path)?;
                // Extractors read the name as a C string; the tar crate keeps
                // what follows a NUL. Only trailing NULs mean the same to both.
                let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                if data[end..].iter().any(|b| *b != 0) {
                    return Err(refuse(format!(
                        "tarball GNU long-name header {} holds bytes after the name's NUL terminator",
                        lossy(&data[..end])
                    )));
                }
                self.pending.long_name = Some(data[..end].to_vec());
                Ok(())
            }
            EntryType::GNULongLink => Err(refuse(format!(
                "tarball has a GNU long link-name header ({}): links are not allowed",
                lossy(&header_path)
            ))),
            EntryType::XHeader => {
                check_shadow_name(&header_path, "pax header")?;
                if self.pending.pax.is_some() {
                    return Err(refuse(format!(
                        "tarball has two pax extended headers in a row ({}): extractors disagree on which applies",
                        lossy(&header_path)
                    )));
                }
                let data = self.read_meta(entry, MAX_PAX_BYTES, "pax header", &header_path)?;
                let records = parse_pax(&data)
                    .map_err(|why| refuse(format!("tarball pax header {} is malformed: {why}", lossy(&header_path))))?;
                let mut pax = LocalPax::default();
                for (key, value) in records {
                    check_local_record(key, value, &header_path)?;
                    match key {
                        "path" => pax.path = Some(value.to_vec()),
                        // check_local_record made sure it is a number.
                        "size" => pax.size = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
                        _ => {}
                    }
                }
                self.pending.pax = Some(pax);
                Ok(())
            }
            EntryType::XGlobalHeader => {
                // `git archive` writes one of these (the commit id). GNU tar
                // and Python apply its records to every later entry.
                check_shadow_name(&header_path, "pax global header")?;
                if let Some(what) = self.pending.describe() {
                    return Err(refuse(format!(
                        "tarball has a pax global header ({}) right after {what}: extractors disagree on which \
                         entry the extension header then describes",
                        lossy(&header_path)
                    )));
                }
                self.count_entry()?;
                let data = self.read_meta(entry, MAX_PAX_BYTES, "pax global header", &header_path)?;
                let records = parse_pax(&data).map_err(|why| {
                    refuse(format!("tarball pax global header {} is malformed: {why}", lossy(&header_path)))
                })?;
                for (key, _) in records {
                    check_global_record(key, &header_path)?;
                }
                Ok(())
            }
            _ => {
                let pending = std::mem::take(&mut self.pending);
                self.entry(entry, header_path, pending)
            }
        }
    }

    /// Reads the data of an extension header, which must be small.
    fn read_meta<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        max: u64,
        what: &str,
        header_path: &[u8],
    ) -> Result<Vec<u8>, ValidationError> {
        let declared = entry.size();
        if declared > max {
            return Err(refuse(format!(
                "tarball {what} {} is {declared} bytes long, more than the {max} allowed",
                lossy(header_path)
            )));
        }
        let mut data = Vec::with_capacity(declared as usize);
        entry.read_to_end(&mut data).map_err(|e| self.io_error(&e))?;
        if (data.len() as u64) < declared {
            return Err(refuse(format!("tarball is corrupt: {what} {} is truncated", lossy(header_path))));
        }
        Ok(data)
    }

    /// A file, a directory, or a refused kind of entry, under the path the
    /// extension headers before it give it.
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        header_path: Vec<u8>,
        pending: Pending,
    ) -> Result<(), ValidationError> {
        self.count_entry()?;
        let pax = pending.pax.unwrap_or_default();
        let raw_path = match (pending.long_name, pax.path) {
            (Some(long), Some(pax_path)) => {
                return Err(refuse(format!(
                    "tarball entry has both a GNU long name {} and a pax path {}: extractors disagree on which applies",
                    lossy(&long),
                    lossy(&pax_path)
                )))
            }
            (Some(name), None) | (None, Some(name)) => {
                // The header's own name is what an extractor that ignores the
                // extension would use.
                check_shadow_name(&header_path, &format!("entry {}", lossy(&name)))?;
                name
            }
            (None, None) => header_path,
        };
        if let Some(size) = pax.size {
            if size != entry.size() {
                return Err(refuse(format!(
                    "tarball entry {} has a pax size of {size} bytes but a header size of {}: extractors \
                     disagree on where the next header starts",
                    lossy(&raw_path),
                    entry.size()
                )));
            }
        }

        let mode = entry.header().mode().unwrap_or(0);
        let is_dir = match entry.header().entry_type() {
            EntryType::Regular => false,
            EntryType::Directory => true,
            other => {
                let kind = match other {
                    EntryType::Symlink => "a symlink".to_owned(),
                    EntryType::Link => "a hard link".to_owned(),
                    EntryType::Char => "a character device".to_owned(),
                    EntryType::Block => "a block device".to_owned(),
                    EntryType::Fifo => "a FIFO".to_owned(),
                    EntryType::GNUSparse => "a GNU sparse file".to_owned(),
                    other => format!("of unsupported type {:?}", other.as_byte() as char),
                };
                return Err(refuse(format!(
                    "tarball entry {} is {kind}: only regular files and directories are allowed",
                    lossy(&raw_path)
                )));
            }
        };
        if is_dir && entry.size() != 0 {
            // Python's tarfile does not skip a directory's data; GNU tar and
            // the tar crate do: the headers after it would differ.
            return Err(refuse(format!(
                "tarball directory entry {} has {} bytes of data: a directory must have none",
                lossy(&raw_path),
                entry.size()
            )));
        }
        if !is_dir && raw_path.ends_with(b"/") {
            // Python and GNU tar take an old-style file whose name ends in
            // '/' for a directory.
            return Err(refuse(format!(
                "tarball file entry {} has a name ending in '/', which extractors take for a directory",
                lossy(&raw_path)
            )));
        }
        if !is_dir && mode & 0o6000 != 0 {
            return Err(refuse(format!(
                "tarball entry {} is setuid or setgid (mode {mode:o}): package files cannot be",
                lossy(&raw_path)
            )));
        }

        let path = normalize_path(&raw_path)?;
        if path.is_empty() {
            // "./" as written by `tar -C dir .`; a file cannot have no name.
            if !is_dir {
                return Err(refuse("tarball entry has an empty path"));
            }
            return self.drain(entry, None, &path).map(drop);
        }
        let components: Vec<&str> = path.split('/').collect();
        self.note_top(components[0], is_dir || components.len() > 1);

        let keep = if is_dir { None } else { self.wanted(&components)? };
        let max_keep = match keep {
            Some(Want::Manifest(_)) => Some(self.limits.max_manifest_bytes),
            Some(Want::Readme(..)) => Some(self.limits.max_readme_bytes),
            None => None,
        };
        self.add_path(&components, is_dir)?;
        let kept = self.drain(entry, max_keep, &path)?;
        match (keep, kept) {
            (Some(Want::Manifest(root)), Some(kept)) => {
                *self.manifest_slot(root) = Some(kept);
            }
            (Some(Want::Readme(root, exact_name)), Some(content)) => {
                *self.readme_slot(root) = Some(Readme { exact_name, content });
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a path, refusing one that names the same file as an earlier
    /// path: the same path twice (directories excepted), a file that is also
    /// a directory, or two spellings that one file system folds into one
    /// name. Which of them would win depends on the extractor and the order.
    fn add_path(&mut self, components: &[&str], is_dir: bool) -> Result<(), ValidationError> {
        let path = components.join("/");
        let mut level = &mut self.tree;
        let mut seen = String::new();
        for (i, component) in components.iter().enumerate() {
            let last = i + 1 == components.len();
            let node = match level.entry(fold(component)) {
                Slot::Occupied(slot) => {
                    let node = slot.into_mut();
                    if !seen.is_empty() {
                        seen.push('/');
                    }
                    seen.push_str(&node.exact);
                    if node.exact != *component {
                        return Err(refuse(format!(
                            "tarball entries {} and {} have the same name once case and Unicode normalisation \
                             are ignored: one would overwrite the other on macOS and Windows",
                            shown(&seen),
                            shown(&path)
                        )));
                    }
                    match (node.is_file, last, is_dir) {
                        (true, true, false) => {
                            return Err(refuse(format!("tarball has a duplicate path {}", shown(&path))))
                        }
                        (true, _, _) | (false, true, false) => {
                            return Err(refuse(format!("tarball path {} is both a file and a directory", shown(&seen))))
                        }
                        _ => {}
                    }
                    node
                }
                Slot::Vacant(slot) => {
                    if !seen.is_empty() {
                        seen.push('/');
                    }
                    seen.push_str(component);
                    slot.insert(Node {
                        exact: (*component).to_owned(),
                        is_file: last && !is_dir,
                        children: HashMap::new(),
                    })
                }
            };
            level = &mut node.children;
        }
        Ok(())
    }

    /// Reads what is left of the inflated stream after the tar end-of-archive
    /// block: padding, which must be zeros.
    fn zeros_to_end(&mut self, rest: &mut impl Read) -> Result<(), ValidationError> {
        loop {
            let n = match rest.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(&e)),
            };
            if self.buf[..n].iter().any(|b| *b != 0) {
                return Err(refuse(
                    "tarball has data after its end-of-archive block: extractors that read past it \
                     (tar --ignore-zeros) would see entries the check did not",
                ));
            }
        }
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
        path: &str,
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
            return Err(refuse(format!("tarball is corrupt: entry {} is truncated", shown(path))));
        }
        Ok(kept)
    }

    fn finish(self) -> Result<TarballContents, ValidationError> {
        if self.entries == 0 {
            return Err(refuse("tarball is empty: it contains no entries"));
        }

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

/// A path component as a case-insensitive, normalising file system (APFS,
/// NTFS) compares it: canonical decomposition, case folded (upper then lower
/// case, so that e.g. the Kelvin sign and 'k' meet), recomposed, without the
/// trailing dots and spaces Windows drops.
fn fold(component: &str) -> String {
    let folded: String = if component.is_ascii() {
        component.to_ascii_lowercase()
    } else {
        let decomposed: String = component.nfd().collect();
        decomposed.to_uppercase().to_lowercase().nfc().collect()
    };
    folded.trim_end_matches(['.', ' ']).to_owned()
}

/// The pax records of an extension header, as `(key, value)`. Records are
/// `"<length> <key>=<value>\n"`, the length counting the whole record. GNU
/// tar and Python split records by length, the tar crate by newline, so a
/// value holding a newline is refused, as is anything that is not a
/// well-formed record (NUL padding included) and a key given twice (the tar
/// crate uses the first, the others the last).
fn parse_pax(data: &[u8]) -> Result<Vec<(&str, &[u8])>, String> {
    let mut records: Vec<(&str, &[u8])> = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 || rest.get(digits) != Some(&b' ') {
            return Err(format!("no record length at byte {pos}"));
        }
        let len: usize = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("bad record length at byte {pos}"))?;
        if len < digits + 4 || len > rest.len() {
            return Err(format!("record length {len} at byte {pos} does not fit the header"));
        }
        let record = &rest[digits + 1..len];
        let Some((b'\n', body)) = record.split_last() else {
            return Err(format!("the record at byte {pos} does not end with a newline"));
        };
        let Some(eq) = body.iter().position(|b| *b == b'=') else {
            return Err(format!("the record at byte {pos} has no '='"));
        };
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        let Ok(key) = std::str::from_utf8(key) else {
            return Err(format!("the key at byte {pos} is not UTF-8"));
        };
        if key.is_empty() {
            return Err(format!("the record at byte {pos} has an empty key"));
        }
        if value.contains(&b'\n') {
            return Err(format!("the value of {} contains a newline", shown(key)));
        }
        if records.iter().any(|(k, _)| *k == key) {
            return Err(format!("{} is given twice", shown(key)));
        }
        records.push((key, value));
        pos += len;
    }
    Ok(records)
}

/// Records a global header may carry: they describe, and apply to every
/// later entry without moving or resizing any.
const GLOBAL_RECORDS: &[&str] = &["comment", "charset", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname"];

fn check_global_record(key: &str, header_path: &[u8]) -> Result<(), ValidationError> {
    if GLOBAL_RECORDS.contains(&key) {
        return Ok(());
    }
    Err(refuse(format!(
        "tarball pax global header {} sets {}: GNU tar and Python apply a global record to every later entry, \
         so only {} are allowed in one",
        lossy(header_path),
        shown(key),
        GLOBAL_RECORDS.join(", ")
    )))
}

/// Extended attributes in these namespaces cannot grant anything (unlike
/// `security.*`, `trusted.*`, `system.*`: capabilities, ACLs, SELinux labels).
fn harmless_xattr(key: &str) -> bool {
    ["SCHILY.xattr.", "LIBARCHIVE.xattr."].iter().any(|prefix| {
        key.strip_prefix(prefix).is_some_and(|name| name.starts_with("user.") || name.starts_with("com.apple."))
    })
}

fn check_local_record(key: &str, value: &[u8], header_path: &[u8]) -> Result<(), ValidationError> {
    let name = lossy(header_path);
    let why = match key {
        "path" if value.is_empty() => "an empty `path` record (GNU tar then uses the header name, the tar crate none)",
        "path" => return Ok(()),
        "size" if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 20 => {
            "a `size` record that is not a plain decimal number"
        }
        "hdrcharset" if value != HDRCHARSET_UTF8 => "a `hdrcharset` record other than UTF-8",
        "size" | "hdrcharset" => return Ok(()),
        "linkpath" => "a `linkpath` record: links are not allowed",
        k if GLOBAL_RECORDS.contains(&k) || harmless_xattr(k) => return Ok(()),
        k if k.starts_with("GNU.sparse.") => {
            "a GNU sparse-file record (GNU tar and Python rename and reshape such an entry)"
        }
        k if k.contains("xattr.") || k.starts_with("SCHILY.acl.") || k.starts_with("RHT.") => {
            return Err(refuse(format!(
                "tarball pax header {name} carries extended attribute or ACL {}: only user.* and com.apple.* \
                 attributes are allowed",
                shown(k)
            )))
        }
        k => {
            return Err(refuse(format!(
                "tarball pax header {name} carries the record {}, which is not accepted (extractors may apply it)",
                shown(k)
            )))
        }
    };
    Err(refuse(format!("tarball pax header {name} carries {why}")))
}

/// Python's tarfile prepends the ustar `prefix` field (bytes 345..500) to
/// the name of any header, while GNU tar and the tar crate only read it in a
/// ustar header, where the name already includes it. In another header
/// (GNU, v7) the field must therefore read as empty.
fn check_prefix_field(header: &tar::Header, header_path: &[u8]) -> Result<(), ValidationError> {
    if header.as_ustar().is_some() || header.as_bytes()[PREFIX_OFFSET] == 0 {
        return Ok(());
    }
    Err(refuse(format!(
        "tarball header {} is not a ustar header but has bytes in the ustar prefix field, which extractors \
         disagree on (Python puts them in front of the name)",
        lossy(header_path)
    )))
}

/// A name an extractor could use instead of the effective path (the header
/// name of an entry whose path comes from an extension header, the name of
/// the extension header itself, used by extractors that do not know it) must
/// not escape either. It may be a truncated copy of a long path, so it need
/// not be valid UTF-8.
fn check_shadow_name(name: &[u8], whose: &str) -> Result<(), ValidationError> {
    let Some(why) = escape_reason(name) else {
        return Ok(());
    };
    Err(refuse(format!(
        "tarball {whose} has a header name {} that {why}: an extractor that ignores extension headers would use it",
        lossy(name)
    )))
}

/// Why `path` could land outside the extraction directory, if it could.
fn escape_reason(path: &[u8]) -> Option<&'static str> {
    if path.contains(&b'\\') {
        return Some("contains a backslash");
    }
    if path.starts_with(b"/") {
        return Some("is absolute");
    }
    let mut components = path.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".");
    if components.clone().any(|c| c == b"..") {
        return Some("contains a '..' component");
    }
    if let Some(first) = components.next() {
        if first.len() >= 2 && first[0].is_ascii_alphabetic() && first[1] == b':' {
            return Some("starts with a Windows drive prefix");
        }
    }
    None
}

/// Turns an entry path into `a/b/c` form, refusing anything that could
/// escape the extraction directory or means different things on different
/// systems. `.` and empty components are dropped, so `./a//b` is `a/b`.
fn normalize_path(raw: &[u8]) -> Result<String, ValidationError> {
    let bad = |why: &str| Err(refuse(format!("tarball entry path {} {why}", lossy(raw))));
    let Ok(path) = std::str::from_utf8(raw) else {
        return bad("is not valid UTF-8");
    };
    if path.len() > MAX_PATH_BYTES {
        return bad(&format!("is longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.contains('\0') {
        return bad("contains a NUL byte");
    }
    if path.chars().any(char::is_control) {
        // A newline or an escape sequence in a name forges the lines of a listing or a log.
        return bad("contains a control character");
    }
    if let Some(why) = escape_reason(raw) {
        return bad(why);
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    Ok(components.join("/"))
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
            file("pkg-1.2.0/src/raven.toml", b"ignored"),
        ]);
        let c = inspect(&bytes).unwrap();
        assert_eq!(c.manifest.name.as_str(), "http-client");
        assert_eq!(c.readme.as_deref(), Some("other case"));
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
            ("a\nb", "contains a control character"),
            ("a\x1b[2Jb", "contains a control character"),
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

    /// The data of a pax header ('x' or 'g') holding `records`.
    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (k, v) in records {
            data.extend(record(k, v.as_bytes()));
        }
        data
    }

    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let body = key.len() + value.len() + 2;
        let mut len = body + 2;
        while len.to_string().len() + 1 + body != len {
            len = len.to_string().len() + 1 + body;
        }
        [format!("{len} {key}=").as_bytes(), value, b"\n"].concat()
    }

    #[test]
    fn pax_records_parse_strictly() {
        assert_eq!(parse_pax(b"").unwrap(), vec![]);
        let two = [record("path", b"a/b"), record("mtime", b"1.5")].concat();
        assert_eq!(parse_pax(&two).unwrap(), vec![("path", b"a/b".as_slice()), ("mtime", b"1.5".as_slice())]);
        assert_eq!(parse_pax(&record("comment", b"")).unwrap(), vec![("comment", b"".as_slice())]);
        for (bad, why) in [
            (b"12 path=abc".to_vec(), "does not fit"),
            (b"12 path=abc\n\0".to_vec(), "no record length"),
            (b"+12 path=abc\n".to_vec(), "no record length"),
            (b"12 path=ab\n\n".to_vec(), "contains a newline"),
            (b"8 pathx\n".to_vec(), "no '='"),
            (b"6 =ab\n".to_vec(), "empty key"),
            (b"4 x\n".to_vec(), "does not fit"),
            ([record("path", b"a"), record("path", b"b")].concat(), "given twice"),
        ] {
            let e = parse_pax(&bad).expect_err(why);
            assert!(e.contains(why), "{:?}: expected {why:?} in {e:?}", String::from_utf8_lossy(&bad));
        }
        assert_eq!(parse_pax(b"5 x=\n").unwrap(), vec![("x", b"".as_slice())], "the shortest record");
        assert_eq!(
            parse_pax(b"0008 x=\n").unwrap(),
            vec![("x", b"".as_slice())],
            "leading zeros: every parser reads them"
        );
    }

    #[test]
    fn folding_ignores_case_normalisation_and_windows_trailing_dots() {
        assert_eq!(fold("RAVEN.TOML"), "raven.toml");
        assert_eq!(fold("caf\u{e9}"), fold("cafe\u{301}"));
        assert_eq!(fold("CAF\u{c9}"), fold("cafe\u{301}"));
        assert_eq!(fold("\u{212a}elvin"), fold("kelvin"), "the Kelvin sign folds to k");
        assert_eq!(fold("a. . "), "a");
        assert_ne!(fold("a"), fold("b"));
    }

    #[test]
    fn only_one_gzip_member_and_nothing_after_it() {
        let tar = tar_bytes(&[file("raven.toml", MANIFEST.as_bytes())]);
        let gz = gzip(&tar);
        assert!(inspect(&gz).is_ok());
        refused(&[gz.clone(), gzip(&tar)].concat(), "a second gzip member after the end of its gzip stream");
        // The first member holds an unterminated tar, the second the rest: GNU tar reads both.
        let open = &tar[..1024];
        let hostile = tar_bytes(&[("../evil", EntryType::Regular, b"x")]);
        refused(&[gzip(open), gzip(&hostile)].concat(), "a second gzip member");
        refused(&[gzip(open), gzip(&hostile[..100]), gzip(&hostile[100..])].concat(), "a second gzip member");
        refused(&[gz.clone(), vec![0; 512]].concat(), "zero padding");
        refused(&[gz.clone(), b"junk".to_vec()].concat(), "data that is not gzip");
        refused(&[gz.clone(), vec![0x1f]].concat(), "after the end of its gzip stream");
        // Inside the stream, after the end-of-archive block: zeros only.
        refused(&gzip(&[tar.clone(), hostile.clone()].concat()), "data after its end-of-archive block");
        assert!(inspect(&gzip(&[tar.clone(), vec![0; 8192]].concat())).is_ok());

        // On success every input byte was read (the REST path stores exactly what was checked).
        let consumed = Rc::new(Cell::new(0));
        inspect_tarball(Consumed(&gz, Rc::clone(&consumed)), &TarballLimits::default()).unwrap();
        assert_eq!(consumed.get(), gz.len());
    }

    #[test]
    fn pax_global_header_may_only_describe() {
        let m = MANIFEST.as_bytes();
        let global = |records: &[(&str, &str)]| {
            let data = pax(records);
            targz(&[("pax_global_header", EntryType::XGlobalHeader, &data), file("raven.toml", m)])
        };
        assert!(inspect(&global(&[("comment", "abc"), ("mtime", "1"), ("uname", "ada")])).is_ok());
        for key in ["path", "linkpath", "size", "GNU.sparse.name", "hdrcharset", "SCHILY.xattr.user.x", "uid.x"] {
            refused(&global(&[(key, "x")]), &format!("pax global header \"pax_global_header\" sets {key:?}"));
        }
        let data = b"99 comment=x\n";
        refused(
            &targz(&[("pax_global_header", EntryType::XGlobalHeader, data), file("raven.toml", m)]),
            "pax global header \"pax_global_header\" is malformed",
        );
    }

    #[test]
    fn pax_local_header_path_is_the_one_checked_and_kept() {
        let m = MANIFEST.as_bytes();
        let with = |records: &[(&str, &str)], name: &str, data: &[u8]| {
            let x = pax(records);
            targz(&[file("raven.toml", m), ("PaxHeaders/x", EntryType::XHeader, &x), (name, EntryType::Regular, data)])
        };
        // The pax path names the entry: it is the one found as README.md.
        let x = pax(&[("path", "README.md")]);
        let ok = targz(&[file("raven.toml", m), ("PaxHeaders/x", EntryType::XHeader, &x), file("other.md", b"hi")]);
        assert_eq!(inspect(&ok).unwrap().readme.as_deref(), Some("hi"));
        assert!(inspect(&with(&[("size", "2"), ("SCHILY.xattr.com.apple.quarantine", "q")], "a", b"ab")).is_ok());
        assert!(inspect(&with(&[("hdrcharset", "ISO-IR 10646 2000 UTF-8")], "a", b"")).is_ok());

        refused(&with(&[("path", "../x")], "a", b""), "\"../x\" contains a '..' component");
        refused(&with(&[("path", "a")], "/abs", b""), "an extractor that ignores extension headers");
        refused(&with(&[("size", "1")], "a", b"ab"), "pax size of 1 bytes but a header size of 2");
        refused(&with(&[("size", "0x2")], "a", b"ab"), "not a plain decimal number");
        refused(&with(&[("linkpath", "x")], "a", b""), "links are not allowed");
        refused(&with(&[("GNU.sparse.major", "1")], "a", b""), "GNU sparse-file record");
        refused(&with(&[("SCHILY.xattr.security.selinux", "x")], "a", b""), "extended attribute");
        refused(&with(&[("LIBARCHIVE.xattr.trusted.x", "x")], "a", b""), "extended attribute");
        refused(&with(&[("SCHILY.acl.access", "x")], "a", b""), "extended attribute or ACL");
        refused(&with(&[("SCHILY.fflags", "schg")], "a", b""), "\"SCHILY.fflags\", which is not accepted");
        refused(&with(&[("path", "")], "a", b""), "empty `path`");

        // An 'x' header then a 'g' header: the tar crate would tie the 'x' to the 'g'.
        let x = pax(&[("path", "b")]);
        let g = pax(&[("comment", "c")]);
        let bytes = targz(&[
            file("raven.toml", m),
            ("PaxHeaders/x", EntryType::XHeader, &x),
            ("pax_global_header", EntryType::XGlobalHeader, &g),
            file("a", b""),
        ]);
        refused(&bytes, "right after a pax extended header");
        refused(&targz(&[file("raven.toml", m), ("PaxHeaders/x", EntryType::XHeader, &x)]), "describes no entry");
    }

    #[test]
    fn gnu_long_names_are_the_path_checked() {
        let m = MANIFEST.as_bytes();
        let long = |name: &[u8]| {
            targz(&[file("raven.toml", m), ("././@LongLink", EntryType::GNULongName, name), file("a", b"")])
        };
        refused(&long(b"../evil\0"), "\"../evil\" contains a '..' component");
        refused(&long(b"b\0../evil"), "holds bytes after the name's NUL terminator");
        assert!(inspect(&long(b"b\0\0")).is_ok());
        refused(
            &targz(&[file("raven.toml", m), ("././@LongLink", EntryType::GNULongLink, b"x\0"), file("a", b"")]),
            "GNU long link-name header",
        );
        refused(&long(b"RAVEN.TOML\0"), "have the same name once case and Unicode normalisation are ignored");
    }

    #[test]
    fn headers_extractors_read_differently_are_refused() {
        let m = MANIFEST.as_bytes();
        // A GNU header with bytes in the ustar prefix field: Python reads "../../x/a".
        let mut tar = tar_bytes(&[file("raven.toml", m), file("a", b"")]);
        let at = 512 * 2 + PREFIX_OFFSET;
        tar[at..at + 7].copy_from_slice(b"../../x");
        let mut header = Header::from_byte_slice(&tar[1024..1536]).clone();
        header.set_cksum();
        tar[1024..1536].copy_from_slice(header.as_bytes());
        refused(&gzip(&tar), "bytes in the ustar prefix field");

        // A directory with data: Python does not skip it, GNU tar does.
        refused(
            &targz(&[file("raven.toml", m), ("d/", EntryType::Directory, b"x")]),
            "directory entry \"d/\" has 1 bytes",
        );
        // An old-style file whose name ends in '/' is a directory to Python and GNU tar.
        refused(&targz(&[file("raven.toml", m), ("d/", EntryType::Regular, b"")]), "name ending in '/'");
        // Sparse files are rebuilt by extractors from maps the check does not read.
        refused(&targz(&[file("raven.toml", m), ("s", EntryType::GNUSparse, b"")]), "is a GNU sparse file");
    }

    #[test]
    fn setuid_and_setgid_files_are_refused() {
        for mode in [0o4755, 0o2755] {
            let mut builder = Builder::new(Vec::new());
            builder.append(&tar_header("raven.toml", MANIFEST.len() as u64), MANIFEST.as_bytes()).unwrap();
            let mut h = tar_header("bin", 0);
            h.set_mode(mode);
            h.set_cksum();
            builder.append(&h, io::empty()).unwrap();
            refused(&gzip(&builder.into_inner().unwrap()), "is setuid or setgid");
        }
    }

    #[test]
    fn names_colliding_on_case_insensitive_or_normalising_systems_are_refused() {
        let m = MANIFEST.as_bytes();
        let needle = "have the same name once case and Unicode normalisation are ignored";
        refused(&targz(&[file("raven.toml", m), file("RAVEN.TOML", b"")]), needle);
        refused(&targz(&[file("raven.toml", m), file("caf\u{e9}", b""), file("cafe\u{301}", b"")]), needle);
        refused(&targz(&[file("raven.toml", m), dir("A/"), file("a/x", b"")]), needle);
        refused(&targz(&[file("raven.toml", m), file("A/x", b""), file("a/y", b"")]), needle);
        refused(&targz(&[file("raven.toml", m), file("x ", b""), file("x", b"")]), needle);
        // Different names that merely look alike are fine.
        assert!(inspect(&targz(&[file("raven.toml", m), file("a-b", b""), file("a_b", b""), file("ab", b"")])).is_ok());
    }

    /// Real `git archive --format=tar.gz --prefix=gitpkg-1.0.0/` output: a pax global header with
    /// the commit id as `comment`, and a long path in a pax `path` record.
    #[test]
    fn git_archive_output_passes() {
        let bytes = include_bytes!("../../fuzz/corpus/tarball/git-archive.tar.gz");
        let c = inspect(bytes).unwrap();
        assert_eq!(c.manifest.name.as_str(), "gitpkg");
        assert_eq!(c.readme.as_deref(), Some("# hi\n"));
    }

    /// The fuzz seeds (fuzz/corpus/tarball): each is accepted or refused as its name says.
    #[test]
    fn fuzz_seeds_are_judged_as_named() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/tarball");
        let accepted = ["valid", "git-archive", "pax-global-comment", "gnu-long-name"];
        let refused_as = [
            ("two-members", "a second gzip member"),
            ("trailing-zeros", "zero padding"),
            ("trailing-garbage", "data that is not gzip"),
            ("pax-global-path", "sets \"path\""),
            ("pax-local-path", "contains a '..' component"),
            ("case-collision", "same name once case"),
            ("nfc-nfd-collision", "same name once case"),
            ("after-end-of-archive", "after its end-of-archive block"),
            ("dotdot", "contains a '..' component"),
            ("no-manifest", "missing raven.toml"),
        ];
        for name in accepted {
            let bytes = std::fs::read(dir.join(format!("{name}.tar.gz"))).unwrap();
            assert!(inspect(&bytes).is_ok(), "{name}: {:?}", inspect(&bytes));
        }
        for (name, needle) in refused_as {
            let bytes = std::fs::read(dir.join(format!("{name}.tar.gz"))).unwrap();
            refused(&bytes, needle);
        }
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
        refused(&gzip(&builder.into_inner().unwrap()), "is 4194304 bytes long, more than the 4097 allowed");
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
