//! Injected errors: fail the Nth operation of a kind, once or from then on.

/// A kind of file-system operation, as counted and failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `read`/`pread` of a file.
    Read,
    /// `write`/`pwrite` of a file.
    Write,
    /// `fsync`/`fdatasync` of a file.
    Fsync,
    /// `fsync` of a directory.
    FsyncDir,
    /// `open` of an existing file.
    Open,
    /// Creating a file.
    Create,
    /// Creating a directory.
    Mkdir,
    /// `rename`.
    Rename,
    /// `unlink` and `rmdir`.
    Unlink,
    /// `link`.
    Link,
    /// `truncate`/`ftruncate`.
    Truncate,
    /// `fallocate`.
    Fallocate,
}

impl Op {
    /// Every kind, in counting order.
    pub const ALL: [Op; 12] = [
        Op::Read,
        Op::Write,
        Op::Fsync,
        Op::FsyncDir,
        Op::Open,
        Op::Create,
        Op::Mkdir,
        Op::Rename,
        Op::Unlink,
        Op::Link,
        Op::Truncate,
        Op::Fallocate,
    ];

    fn index(self) -> usize {
        Op::ALL.iter().position(|&op| op == self).unwrap_or(0)
    }
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// `EIO`: an I/O error.
    Io,
    /// `ENOSPC`: no space left on the device.
    NoSpace,
}

impl Errno {
    pub(crate) fn raw(self) -> i32 {
        match self {
            Errno::Io => libc::EIO,
            Errno::NoSpace => libc::ENOSPC,
        }
    }
}

/// One injected fault: the `nth` operation of kind `op` (counted from when the fault is
/// injected, from 1) fails with `errno`; with `persistent`, so does every later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The kind of operation that fails.
    pub op: Op,
    /// Which one first: 1 is the next one.
    pub nth: u64,
    /// The error it returns.
    pub errno: Errno,
    /// Whether every later operation of the kind fails too.
    pub persistent: bool,
}

impl Fault {
    /// The `nth` operation of kind `op` fails once with `EIO`.
    pub fn once(op: Op, nth: u64) -> Self {
        Self { op, nth, errno: Errno::Io, persistent: false }
    }

    /// The `nth` operation of kind `op` and every later one fail with `EIO`.
    pub fn from_then_on(op: Op, nth: u64) -> Self {
        Self { persistent: true, ..Self::once(op, nth) }
    }

    /// A full disk: the `nth` write and every later one fail with `ENOSPC` (and `statfs`
    /// reports no free space) until the faults are cleared.
    pub fn disk_full(nth: u64) -> Self {
        Self { errno: Errno::NoSpace, ..Self::from_then_on(Op::Write, nth) }
    }
}

/// How many operations of each kind the file system served (failed ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts([u64; Op::ALL.len()]);

impl OpCounts {
    /// Operations of kind `op`.
    pub fn get(&self, op: Op) -> u64 {
        self.0[op.index()]
    }
}

#[derive(Debug)]
struct Rule {
    fault: Fault,
    seen: u64,
    spent: bool,
}

/// The faults in force and the operation counts.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<Rule>,
    counts: OpCounts,
    failed: u64,
    off: bool,
}

impl Faults {
    /// Count an operation of kind `op`; the errno to fail it with, if a fault says so.
    pub(crate) fn check(&mut self, op: Op) -> Result<(), i32> {
        self.counts.0[op.index()] += 1;
        if self.off {
            self.failed += 1;
            return Err(libc::EIO);
        }
        let mut result = Ok(());
        for rule in self.rules.iter_mut().filter(|r| r.fault.op == op && !r.spent) {
            rule.seen += 1;
            if rule.seen >= rule.fault.nth {
                rule.spent = !rule.fault.persistent;
                result = Err(rule.fault.errno.raw());
            }
        }
        if result.is_err() {
            self.failed += 1;
        }
        result
    }

    pub(crate) fn inject(&mut self, fault: Fault) {
        self.rules.push(Rule { fault, seen: 0, spent: false });
    }

    /// Fail every operation with `EIO` until [`power_on`](Self::power_on).
    pub(crate) fn power_off(&mut self) {
        self.off = true;
    }

    pub(crate) fn power_on(&mut self) {
        self.off = false;
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn counts(&self) -> OpCounts {
        self.counts
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }

    /// Whether a full-disk fault is in force.
    pub(crate) fn disk_full(&self) -> bool {
        self.rules.iter().any(|r| r.fault.errno == Errno::NoSpace && !r.spent && r.seen >= r.fault.nth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_fails_only_the_nth() {
        let mut f = Faults::default();
        f.inject(Fault::once(Op::Write, 3));
        let got: Vec<bool> = (0..5).map(|_| f.check(Op::Write).is_err()).collect();
        assert_eq!(got, [false, false, true, false, false]);
        assert!(f.check(Op::Fsync).is_ok());
        assert_eq!(f.counts().get(Op::Write), 5);
        assert_eq!(f.failed(), 1);
    }

    #[test]
    fn from_then_on_fails_until_cleared() {
        let mut f = Faults::default();
        f.inject(Fault::disk_full(2));
        assert!(f.check(Op::Write).is_ok());
        assert!(!f.disk_full());
        assert_eq!(f.check(Op::Write), Err(libc::ENOSPC));
        assert!(f.disk_full());
        assert_eq!(f.check(Op::Write), Err(libc::ENOSPC));
        f.clear();
        assert!(f.check(Op::Write).is_ok());
    }
}
