//! The readers under `tar::Archive`: the gzip member boundary and the meter of inflated bytes,
//! which enforces the unpacked-size allowance while inflating.
use super::*;

/// Shared between the readers under `tar::Archive` and the scan, which raises
/// the allowance as it accounts for entries and file data.
#[derive(Default)]
pub(super) struct Meter {
    pub(super) inflated: Cell<u64>,
    pub(super) allowance: Cell<u64>,
    pub(super) tripped: Cell<bool>,
    /// What follows the first gzip member, once its end is reached.
    pub(super) trailing: Cell<Option<&'static str>>,
}

/// Counts every inflated byte and fails the read once the total goes past
/// what the archive's entries can justify.
pub(super) struct MeteredReader<R> {
    pub(super) inner: R,
    pub(super) meter: Rc<Meter>,
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
pub(super) struct OneMember<R> {
    pub(super) inner: GzDecoder<R>,
    pub(super) meter: Rc<Meter>,
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
