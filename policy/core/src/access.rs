//! File system access rights, with the same bit values as the kernel's
//! `LANDLOCK_ACCESS_FS_*` (include/uapi/linux/landlock.h), so an enforcer can
//! pass [`Access::bits`] straight to `landlock_add_rule`.

use core::fmt;

/// A set of Landlock file system rights.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u64);

impl Access {
    pub const EXECUTE: Access = Access(1 << 0);
    pub const WRITE_FILE: Access = Access(1 << 1);
    pub const READ_FILE: Access = Access(1 << 2);
    pub const READ_DIR: Access = Access(1 << 3);
    pub const REMOVE_DIR: Access = Access(1 << 4);
    pub const REMOVE_FILE: Access = Access(1 << 5);
    pub const MAKE_CHAR: Access = Access(1 << 6);
    pub const MAKE_DIR: Access = Access(1 << 7);
    pub const MAKE_REG: Access = Access(1 << 8);
    pub const MAKE_SOCK: Access = Access(1 << 9);
    pub const MAKE_FIFO: Access = Access(1 << 10);
    pub const MAKE_BLOCK: Access = Access(1 << 11);
    pub const MAKE_SYM: Access = Access(1 << 12);
    /// ABI 2.
    pub const REFER: Access = Access(1 << 13);
    /// ABI 3.
    pub const TRUNCATE: Access = Access(1 << 14);
    /// ABI 5.
    pub const IOCTL_DEV: Access = Access(1 << 15);

    pub const NONE: Access = Access(0);

    /// What `read_only` grants: read files, list directories.
    pub const READ: Access = Access(Self::READ_FILE.0 | Self::READ_DIR.0);

    /// What `read_write` grants: every right but execute.
    pub const READ_WRITE: Access = Access(
        Self::READ.0
            | Self::WRITE_FILE.0
            | Self::REMOVE_DIR.0
            | Self::REMOVE_FILE.0
            | Self::MAKE_CHAR.0
            | Self::MAKE_DIR.0
            | Self::MAKE_REG.0
            | Self::MAKE_SOCK.0
            | Self::MAKE_FIFO.0
            | Self::MAKE_BLOCK.0
            | Self::MAKE_SYM.0
            | Self::REFER.0
            | Self::TRUNCATE.0
            | Self::IOCTL_DEV.0,
    );

    /// What `executable` grants: execute and read (a program must be read to run).
    pub const EXEC: Access = Access(Self::EXECUTE.0 | Self::READ.0);

    /// Every right agent-vault knows (ABI 1 to 5 file system rights).
    pub const ALL: Access = Access(Self::READ_WRITE.0 | Self::EXECUTE.0);

    /// The rights that Landlock accepts on a rule whose object is not a directory.
    pub const FILE_ONLY: Access = Access(
        Self::EXECUTE.0
            | Self::WRITE_FILE.0
            | Self::READ_FILE.0
            | Self::TRUNCATE.0
            | Self::IOCTL_DEV.0,
    );

    /// The raw bits, as the kernel numbers them.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// From raw bits; bits agent-vault does not know are dropped.
    pub const fn from_bits_truncate(bits: u64) -> Access {
        Access(bits & Self::ALL.0)
    }

    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    pub const fn intersect(self, other: Access) -> Access {
        Access(self.0 & other.0)
    }

    pub const fn without(self, other: Access) -> Access {
        Access(self.0 & !other.0)
    }

    pub const fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rights handled by a kernel of Landlock ABI `abi` (1 to 5 matter here).
    pub const fn supported_by_abi(abi: u32) -> Access {
        match abi {
            0 => Access::NONE,
            1 => Access(Self::ALL.0 & !(Self::REFER.0 | Self::TRUNCATE.0 | Self::IOCTL_DEV.0)),
            2 => Access(Self::ALL.0 & !(Self::TRUNCATE.0 | Self::IOCTL_DEV.0)),
            3 | 4 => Access(Self::ALL.0 & !Self::IOCTL_DEV.0),
            _ => Self::ALL,
        }
    }

    /// The names of the rights in this set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .filter(move |(bit, _)| self.contains(*bit))
            .map(|(_, name)| *name)
    }

    /// A short name for the common sets (`read`, `list only`, ...); `None`
    /// for any other set (then [`fmt::Display`] lists the rights).
    pub fn common_name(self) -> Option<&'static str> {
        Some(match self {
            a if a.is_empty() => "no access",
            a if a.contains(Access::ALL) => "read, write, execute",
            a if a == Access::READ_WRITE => "read, write",
            a if a == Access::EXEC => "read, execute",
            a if a == Access::READ => "read",
            a if a == Access::READ_DIR => "list only",
            _ => return None,
        })
    }
}

/// The description `check` and `explain` print: a common set's name, or
/// the rights' names separated by `, `.
impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.common_name() {
            return f.write_str(n);
        }
        for (i, n) in self.names().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

const NAMES: [(Access, &str); 16] = [
    (Access::EXECUTE, "execute"),
    (Access::WRITE_FILE, "write_file"),
    (Access::READ_FILE, "read_file"),
    (Access::READ_DIR, "read_dir"),
    (Access::REMOVE_DIR, "remove_dir"),
    (Access::REMOVE_FILE, "remove_file"),
    (Access::MAKE_CHAR, "make_char"),
    (Access::MAKE_DIR, "make_dir"),
    (Access::MAKE_REG, "make_reg"),
    (Access::MAKE_SOCK, "make_sock"),
    (Access::MAKE_FIFO, "make_fifo"),
    (Access::MAKE_BLOCK, "make_block"),
    (Access::MAKE_SYM, "make_sym"),
    (Access::REFER, "refer"),
    (Access::TRUNCATE, "truncate"),
    (Access::IOCTL_DEV, "ioctl_dev"),
];

impl core::ops::BitOr for Access {
    type Output = Access;
    fn bitor(self, rhs: Access) -> Access {
        self.union(rhs)
    }
}

impl core::ops::BitOrAssign for Access {
    fn bitor_assign(&mut self, rhs: Access) {
        *self = self.union(rhs);
    }
}

impl core::ops::BitAnd for Access {
    type Output = Access;
    fn bitand(self, rhs: Access) -> Access {
        self.intersect(rhs)
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Access(")?;
        let mut first = true;
        for n in self.names() {
            if !first {
                write!(f, "|")?;
            }
            first = false;
            write!(f, "{n}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_the_kernel_uapi() {
        assert_eq!(Access::EXECUTE.bits(), 1);
        assert_eq!(Access::REFER.bits(), 1 << 13);
        assert_eq!(Access::TRUNCATE.bits(), 1 << 14);
        assert_eq!(Access::IOCTL_DEV.bits(), 1 << 15);
        assert_eq!(Access::ALL.bits(), (1 << 16) - 1);
    }

    #[test]
    fn abi_masks_grow_with_the_abi() {
        assert!(!Access::supported_by_abi(1).contains(Access::REFER));
        assert!(Access::supported_by_abi(2).contains(Access::REFER));
        assert!(!Access::supported_by_abi(2).contains(Access::TRUNCATE));
        assert!(Access::supported_by_abi(3).contains(Access::TRUNCATE));
        assert!(!Access::supported_by_abi(4).contains(Access::IOCTL_DEV));
        assert_eq!(Access::supported_by_abi(7), Access::ALL);
    }

    #[test]
    fn display_names_common_sets() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(Access::READ.to_string(), "read");
        assert_eq!(Access::READ_WRITE.to_string(), "read, write");
        assert_eq!(Access::READ_DIR.to_string(), "list only");
        assert_eq!(Access::NONE.to_string(), "no access");
        assert_eq!(
            (Access::READ_FILE | Access::TRUNCATE).to_string(),
            "read_file, truncate"
        );
    }
}
