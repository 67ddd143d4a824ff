//! The walk over the tar headers: extension headers applied as extractors apply them, every
//! entry counted and checked, the root `raven.toml` and README kept.
use super::*;

/// Which top-level path components the archive has used so far.
pub(super) enum Top {
    Nothing,
    /// Every entry lives under this one directory.
    Single(String),
    /// Files at the root, or several top-level components.
    Mixed,
}

/// A file whose content may be needed once the root is known.
pub(super) enum Kept {
    Data(Vec<u8>),
    TooLarge,
}

pub(super) struct Readme {
    pub(super) exact_name: bool,
    pub(super) content: Kept,
}

/// Extension headers read so far, which describe the next entry.
#[derive(Default)]
pub(super) struct Pending {
    /// The name from a GNU long-name (`L`) header.
    pub(super) long_name: Option<Vec<u8>>,
    /// The records of a pax extended (`x`) header.
    pub(super) pax: Option<LocalPax>,
}

#[derive(Default)]
pub(super) struct LocalPax {
    pub(super) path: Option<Vec<u8>>,
    pub(super) size: Option<u64>,
}

impl Pending {
    pub(super) fn describe(&self) -> Option<&'static str> {
        match (&self.long_name, &self.pax) {
            (None, None) => None,
            (Some(_), _) => Some("a GNU long-name header"),
            (None, Some(_)) => Some("a pax extended header"),
        }
    }
}

/// One component of the path tree, under its folded name.
pub(super) struct Node {
    /// The component as written.
    pub(super) exact: String,
    pub(super) is_file: bool,
    pub(super) children: HashMap<String, Node>,
}

pub(super) struct Scan<'l> {
    pub(super) limits: &'l TarballLimits,
    pub(super) meter: Rc<Meter>,
    pub(super) entries: u64,
    pub(super) unpacked: u64,
    pub(super) pending: Pending,
    /// Every path seen, by folded component: clashes are found as entries
    /// arrive, and the storage is bounded by the bytes of the paths.
    pub(super) tree: HashMap<String, Node>,
    pub(super) top: Top,
    // Candidates at the literal root and one level down; which pair counts
    // is only known after the last entry.
    pub(super) root_manifest: Option<Kept>,
    pub(super) nested_manifest: Option<Kept>,
    pub(super) root_readme: Option<Readme>,
    pub(super) nested_readme: Option<Readme>,
    pub(super) buf: Vec<u8>,
    /// Entries refused for their path, type or mode, which the scan skipped to go on.
    pub(super) problems: Vec<ValidationError>,
}

/// What a scan that read the whole archive found.
pub(super) struct Finished {
    pub(super) manifest: ManifestReport,
    pub(super) readme: Option<String>,
    pub(super) entries: u64,
    pub(super) unpacked_bytes: u64,
}

impl<'l> Scan<'l> {
    pub(super) fn new(limits: &'l TarballLimits, meter: Rc<Meter>) -> Self {
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
            problems: Vec::new(),
        }
    }

    /// File data read so far, plus one read buffer in flight, plus the
    /// metadata overhead allowed for the entries seen and the next one.
    pub(super) fn update_allowance(&self) {
        let allowance = self
            .unpacked
            .saturating_add(READ_BUF as u64)
            .saturating_add(OVERHEAD_PER_ENTRY.saturating_mul(self.entries.saturating_add(1)))
            .saturating_add(OVERHEAD_SLACK);
        self.meter.allowance.set(allowance);
    }

    pub(super) fn too_big(&self) -> ValidationError {
        refuse(format!("tarball exceeds the unpacked size limit of {} bytes", self.limits.max_unpacked_bytes))
            .with_code(code::TOO_LARGE)
    }

    pub(super) fn io_error(&self, e: &io::Error) -> ValidationError {
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
            .with_code(code::TOO_LARGE)
        } else {
            corrupt(e)
        }
    }

    pub(super) fn count_entry(&mut self) -> Result<(), ValidationError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(refuse(format!("tarball has more than {} entries (the entry limit)", self.limits.max_entries))
                .with_code(code::TOO_LARGE));
        }
        self.update_allowance();
        Ok(())
    }

    /// One header of the raw stream: an extension header is remembered for
    /// the entry it describes, an entry is checked under its effective path.
    pub(super) fn header<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ValidationError> {
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
    pub(super) fn read_meta<R: Read>(
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
    pub(super) fn entry<R: Read>(
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
                let refusal = refuse(format!(
                    "tarball entry {} is {kind}: only regular files and directories are allowed",
                    lossy(&raw_path)
                ));
                return self.skip(entry, refusal.with_code(code::TARBALL_ENTRY_REFUSED), &raw_path);
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
            let refusal = refuse(format!(
                "tarball entry {} is setuid or setgid (mode {mode:o}): package files cannot be",
                lossy(&raw_path)
            ));
            return self.skip(entry, refusal.with_code(code::TARBALL_ENTRY_REFUSED), &raw_path);
        }

        let path = match normalize_path(&raw_path) {
            Ok(path) => path,
            Err(refusal) => {
                let which = if escape_reason(&raw_path).is_some() {
                    code::TARBALL_PATH_TRAVERSAL
                } else {
                    code::TARBALL_PATH_INVALID
                };
                return self.skip(entry, refusal.with_code(which), &raw_path);
            }
        };
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
        if let Err(refusal) = self.add_path(&components, is_dir) {
            return self.skip(entry, refusal.with_code(code::TARBALL_PATH_INVALID), path.as_bytes());
        }
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

    /// Records the refusal of an entry that the rest of the archive does not depend on, and
    /// reads past its data (counted against the limits like any other) to check the rest.
    pub(super) fn skip<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        refusal: ValidationError,
        raw_path: &[u8],
    ) -> Result<(), ValidationError> {
        let path = String::from_utf8_lossy(raw_path).chars().take(MAX_SHOWN_PATH_CHARS).collect::<String>();
        if self.problems.len() < crate::domain::problems::MAX_PROBLEMS {
            self.problems.push(refusal.at_path(path.clone()));
        }
        self.drain(entry, None, &path).map(drop)
    }

    /// Records a path, refusing one that names the same file as an earlier
    /// path: the same path twice (directories excepted), a file that is also
    /// a directory, or two spellings that one file system folds into one
    /// name. Which of them would win depends on the extractor and the order.
    pub(super) fn add_path(&mut self, components: &[&str], is_dir: bool) -> Result<(), ValidationError> {
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
    pub(super) fn zeros_to_end(&mut self, rest: &mut impl Read) -> Result<(), ValidationError> {
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

    pub(super) fn note_top(&mut self, first: &str, is_dir: bool) {
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
    pub(super) fn wanted(&mut self, components: &[&str]) -> Result<Option<Want>, ValidationError> {
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

    pub(super) fn manifest_slot(&mut self, root: bool) -> &mut Option<Kept> {
        if root {
            &mut self.root_manifest
        } else {
            &mut self.nested_manifest
        }
    }

    pub(super) fn readme_slot(&mut self, root: bool) -> &mut Option<Readme> {
        if root {
            &mut self.root_readme
        } else {
            &mut self.nested_readme
        }
    }

    /// Reads the entry's data to its end, counting every byte against the
    /// unpacked limit, and keeps up to `max_keep` bytes of it if asked.
    pub(super) fn drain<R: Read>(
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

    pub(super) fn finish(self) -> Result<Finished, ValidationError> {
        if self.entries == 0 {
            return Err(refuse("tarball is empty: it contains no entries"));
        }

        let prefixed = matches!(self.top, Top::Single(_)) && self.root_manifest.is_none();
        let (manifest, readme) =
            if prefixed { (self.nested_manifest, self.nested_readme) } else { (self.root_manifest, self.root_readme) };
        let manifest = match manifest {
            None => return Err(refuse("missing raven.toml at the archive root").with_code(code::MANIFEST_MISSING)),
            Some(Kept::TooLarge) => {
                return Err(refuse(format!("raven.toml is larger than {} bytes", self.limits.max_manifest_bytes))
                    .with_code(code::TOO_LARGE))
            }
            Some(Kept::Data(bytes)) => String::from_utf8(bytes)
                .map_err(|_| refuse("raven.toml is not valid UTF-8").with_code(code::MANIFEST_INVALID))?,
        };
        let manifest = Manifest::check(&manifest);
        // An oversized or non-UTF-8 README is not worth refusing a package over.
        let readme = match readme.map(|r| r.content) {
            Some(Kept::Data(bytes)) => String::from_utf8(bytes).ok(),
            _ => None,
        };
        Ok(Finished { manifest, readme, entries: self.entries, unpacked_bytes: self.unpacked })
    }
}

pub(super) enum Want {
    /// true: at the literal root; false: one directory down.
    Manifest(bool),
    Readme(bool, bool),
}
