//! Inspection of an uploaded package tarball (`.tar.gz`), and (in `build`) the one builder of valid
//! package tarballs that the `seed` command and the tests share.
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

use super::problems::code;
use super::{shown, Manifest, ManifestReport, ValidationError};

pub mod build;
mod paths;
mod pax;
mod scan;
mod stream;
#[cfg(test)]
mod tests;

use paths::*;
use pax::*;
use scan::*;
use stream::*;

const FIELD: &str = "tarball";
const MANIFEST_NAME: &str = "raven.toml";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUF: usize = 64 * 1024;
/// Compressed bytes read ahead of the inflater.
const COMPRESSED_BUF: usize = 16 * 1024;
/// Longer paths are refused outright: no real package needs them, and it
/// keeps the per-entry bookkeeping bounded.
const MAX_PATH_BYTES: usize = 4096;
/// A refused entry's path as reported in a problem's `path`.
const MAX_SHOWN_PATH_CHARS: usize = 200;
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

/// Everything [`scan_tarball`] found: the refusals in the order the archive presented them, and
/// the manifest's own report when the archive could be read to its end.
#[derive(Debug, Clone, Default)]
pub struct TarballReport {
    /// Refusals of the archive itself. An entry refused for its path, type or mode is skipped and
    /// the scan goes on; any other refusal ends the scan (the stream cannot be trusted past it),
    /// and then no manifest is read.
    pub problems: Vec<ValidationError>,
    /// What `raven.toml` held, when the scan reached it (see [`Manifest::check`]).
    pub manifest: Option<ManifestReport>,
    pub readme: Option<String>,
    pub entries: u64,
    pub unpacked_bytes: u64,
}

impl TarballReport {
    /// The contents, or the first refusal (archive first, then manifest: the order of the checks).
    pub fn into_contents(mut self) -> Result<TarballContents, ValidationError> {
        if !self.problems.is_empty() {
            return Err(self.problems.swap_remove(0));
        }
        let Some(mut report) = self.manifest else {
            return Err(refuse("missing raven.toml at the archive root").with_code(code::MANIFEST_MISSING));
        };
        match report.manifest {
            Some(manifest) => Ok(TarballContents {
                manifest,
                readme: self.readme,
                entries: self.entries,
                unpacked_bytes: self.unpacked_bytes,
            }),
            None => Err(report.problems.swap_remove(0)),
        }
    }
}

/// Validates a package tarball; `reader` yields the compressed bytes. On
/// success every byte of `reader` has been read.
pub fn inspect_tarball<R: Read>(reader: R, limits: &TarballLimits) -> Result<TarballContents, ValidationError> {
    scan_tarball(reader, limits).into_contents()
}

/// Validates a package tarball like [`inspect_tarball`] but reports every refusal it can: within
/// the same limits, so it never does more work than the first refusal would have cost the scan
/// of a clean archive of that size.
pub fn scan_tarball<R: Read>(mut reader: R, limits: &TarballLimits) -> TarballReport {
    let mut report = TarballReport::default();
    let mut magic = [0u8; 2];
    let got = match read_up_to(&mut reader, &mut magic) {
        Ok(got) => got,
        Err(e) => {
            report.problems.push(corrupt(&e));
            return report;
        }
    };
    if got == 0 {
        report.problems.push(refuse("tarball is empty"));
        return report;
    }
    if magic[..got] != GZIP_MAGIC {
        report.problems.push(refuse("tarball is not gzip-compressed"));
        return report;
    }

    let meter = Rc::new(Meter::default());
    let compressed = BufReader::with_capacity(COMPRESSED_BUF, Cursor::new(magic).chain(reader));
    let gzip = OneMember { inner: GzDecoder::new(compressed), meter: Rc::clone(&meter) };
    let inflated = MeteredReader { inner: gzip, meter: Rc::clone(&meter) };
    let archive = tar::Archive::new(inflated);
    let mut scan = Scan::new(limits, meter);
    scan.update_allowance();

    let walked = walk(archive, &mut scan);
    report.problems = std::mem::take(&mut scan.problems);
    if let Err(e) = walked {
        report.problems.push(e);
        return report;
    }
    match scan.finish() {
        Ok(finished) => {
            report.manifest = Some(finished.manifest);
            report.readme = finished.readme;
            report.entries = finished.entries;
            report.unpacked_bytes = finished.unpacked_bytes;
        }
        Err(e) => report.problems.push(e),
    }
    report
}

/// Every header, then the padding after the end-of-archive block.
fn walk<R: Read>(mut archive: tar::Archive<R>, scan: &mut Scan<'_>) -> Result<(), ValidationError> {
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
    scan.zeros_to_end(&mut rest)
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
