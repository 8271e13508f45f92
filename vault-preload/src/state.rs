//! One-time initialisation: where the state is, who the harness is, the policy.
//!
//! [`get`] is called by every hook and by the constructor; the first caller
//! builds the [`State`], in place in a static: it reads agent-init's policy
//! image into a static buffer and checks it once ([`View::decode`]); the
//! view keeps slices into that buffer. Nothing allocates, here or later. Files are read with raw system calls,
//! so initialisation never re-enters our own `open` hooks.
//!
//! Nothing in the environment redirects the state directory or the policy:
//! - state: `/run/agent-vault/` when it is a root-owned directory holding
//!   `harness.pid`; else `/tmp/agent-vault-<uid>/` when owned by this uid or
//!   root and not group- or world-writable; else none;
//! - policy: `<state>/policy.bin` (the image agent-init writes), else the
//!   built-in policy ([`builtin`]): the vault of `policy/default.toml`,
//!   expanded with this process's home and environment. A state directory
//!   without its image gets one line on stderr and the built-in policy; one
//!   with a damaged image (or one of another version) gets one line and
//!   exit 126 in every unprivileged process: a tool never guesses the vault.

use crate::sys;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering};
use policy_core::image::{Encoder, MAX_IMAGE, MAX_VAULT, SliceOut, Strs};
use policy_core::pathbuf::FixedPath;
use policy_core::pathbuf::is_within;
use policy_core::{Access, FileId, VaultKind, View};

/// The name of the vault entry that agent-init adds as the tool-layer probe
/// (the policy crate's `PROBE_ENTRY`).
const PROBE_ENTRY: &[u8] = b"agent-vault-probe";
/// agent-init's state directory when started as root (the policy crate's `STATE_DIR`).
const STATE_DIR: &[u8] = b"/run/agent-vault";

/// Everything the hooks need, built once per process image.
pub struct State {
    /// The harness's pid (0: none recorded).
    pub harness_pid: i32,
    /// Our pid when this state was built.
    pub init_pid: i32,
    /// The process held CAP_SYS_ADMIN when it started (a privileged
    /// `docker exec`: it can rewrite `/etc/ld.so.preload`), or is PID 1 (the
    /// container's init, agent-init): the preload neither checks nor
    /// restricts it.
    pub privileged: bool,
    /// The policy: slices into the image buffer (or the built-in's).
    pub policy: View<'static>,
    /// Each vault entry, unpacked from the image once (the open hooks'
    /// matcher: no parsing per open), with its identity when it exists.
    entries: Table<VaultRef, MAX_VAULT>,
    /// The identities that exist, packed (for the tool-layer walk).
    existing: Table<FileId, MAX_VAULT>,
    /// Devices on which a vault entry (or, for a missing one, its nearest
    /// existing ancestor) lives: an fd on one of these is checked by path.
    watched_devs: Table<u64, MAX_VAULT>,
    /// A vault `file` entry has more than one link (a hard link elsewhere
    /// that Landlock would not catch): always use the full check.
    pub file_aliases: bool,
}

/// One vault entry, as the open hooks need it.
#[derive(Clone, Copy)]
struct VaultRef {
    path: &'static [u8],
    /// The last component (the pre-filter's needle).
    basename: &'static [u8],
    kind: VaultKind,
    exceptions: Strs<'static>,
    id: Option<FileId>,
}

/// A fixed-capacity list that writes only the slots it uses: the state
/// lives in a static, and every page written is a page fault in every
/// process.
struct Table<T: Copy, const N: usize> {
    len: usize,
    items: [MaybeUninit<T>; N],
}

impl<T: Copy, const N: usize> Table<T, N> {
    /// Make the table at `p` empty without writing its slots.
    ///
    /// # Safety
    /// `p` is valid for writes.
    unsafe fn init(p: *mut Self) {
        // SAFETY: the caller's contract; `len` is the only field that needs
        // a value (slots past `len` are never read).
        unsafe { core::ptr::addr_of_mut!((*p).len).write(0) };
    }

    /// Append; false when full.
    fn push(&mut self, v: T) -> bool {
        if self.len == N {
            return false;
        }
        self.items[self.len].write(v);
        self.len += 1;
        true
    }

    fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` slots were written by `push`;
        // MaybeUninit<T> has T's layout.
        unsafe { core::slice::from_raw_parts(self.items.as_ptr().cast::<T>(), self.len) }
    }
}

/// Set when this process is known to be under the tool layer (the
/// constructor's probe said so, or this process applied it). Inherited by
/// fork, as the Landlock domain is; reset by exec (a new image).
pub static UNDER_TOOL_LAYER: AtomicBool = AtomicBool::new(false);

impl State {
    /// This process is the harness (checked every time: never cached across fork).
    #[inline]
    pub fn is_harness(&self) -> bool {
        self.harness_pid > 0 && sys::getpid() == self.harness_pid
    }

    /// A process that started as the harness and now has another pid: a
    /// forked (or vforked) child of the harness that has not exec'd yet.
    #[inline]
    pub fn is_harness_child(&self) -> bool {
        self.harness_pid > 0 && self.init_pid == self.harness_pid && !self.is_harness()
    }

    /// The open hooks check this process. A process that did not start as
    /// the harness never becomes it (neither it nor its forks have the
    /// harness's pid), so tools pay no `getpid` here.
    #[inline]
    pub fn guarded(&self) -> bool {
        if self.privileged {
            return false;
        }
        if self.harness_pid <= 0 || self.init_pid != self.harness_pid {
            return true;
        }
        !self.is_harness()
    }

    /// The light check applies: this process is under the tool layer, so the
    /// kernel already refuses every vault entry (reads, writes, truncation,
    /// whatever the name), and no vault `file` entry has another link. The
    /// hooks then only match the path as given (no system call) and record
    /// the kernel's refusals; otherwise they also `fstat` and, on a watched
    /// device, read the fd's real path.
    #[inline]
    pub fn light(&self) -> bool {
        !self.file_aliases && UNDER_TOOL_LAYER.load(Ordering::Relaxed)
    }

    /// False when `path` cannot name a vault entry lexically: it holds no
    /// entry's last component (normalization only removes components). The
    /// open hooks' pre-filter, so it uses glibc's `memmem`, not a loop of
    /// slice comparisons.
    #[inline]
    pub fn may_match(&self, path: &[u8]) -> bool {
        self.entries.as_slice().iter().any(|e| {
            let b = e.basename;
            // SAFETY: both pointers and lengths come from live slices; memmem
            // only reads them.
            !unsafe { libc::memmem(path.as_ptr().cast(), path.len(), b.as_ptr().cast(), b.len()) }
                .is_null()
        })
    }

    /// The vault entry covering a clean absolute path (as
    /// [`View::match_path`], over the unpacked entries).
    #[inline]
    pub fn match_path(&self, path: &[u8]) -> Option<usize> {
        self.entries.as_slice().iter().position(|e| match e.kind {
            VaultKind::File => path == e.path,
            VaultKind::Dir => {
                is_within(path, e.path) && !{ e.exceptions }.any(|x| is_within(path, x.bytes()))
            }
        })
    }

    /// The vault entry whose own inode this is (the entry itself, or a hard
    /// link or symlink target of it).
    #[inline]
    pub fn match_id(&self, id: FileId) -> Option<usize> {
        self.entries
            .as_slice()
            .iter()
            .position(|e| e.id == Some(id))
    }

    /// The rule name of vault entry `i`.
    pub fn rule_name(&self, i: usize) -> &'static [u8] {
        self.policy.entry(i).map_or(b"?", |e| e.name.bytes())
    }

    /// The identities of the vault entries that exist.
    pub fn vault_ids(&self) -> &[FileId] {
        self.existing.as_slice()
    }

    #[inline]
    pub fn watched(&self, dev: u64) -> bool {
        self.watched_devs.as_slice().contains(&dev)
    }

    /// Where the tool-layer probe looks, NUL-terminated: agent-init's probe
    /// directory, then each vault directory.
    pub fn probe_candidates(&self) -> impl Iterator<Item = &'static [u8]> + '_ {
        let probe = self.policy.probe.map(|p| p.with_nul());
        let dirs = self
            .policy
            .vault()
            .filter(|e| e.kind == VaultKind::Dir && e.name.bytes() != PROBE_ENTRY)
            .map(|e| e.path.with_nul());
        probe.into_iter().chain(dirs)
    }
}

/// A static the builder fills before publication.
struct Cell<T>(UnsafeCell<T>);
// SAFETY: written only by the thread that holds BUILDER, before STATE is
// published (Release); read only through the published pointer (Acquire).
unsafe impl<T> Sync for Cell<T> {}

static SLOT: Cell<MaybeUninit<State>> = Cell(UnsafeCell::new(MaybeUninit::uninit()));
/// The policy image, as read from `policy.bin`.
static IMAGE: Cell<[u8; MAX_IMAGE]> = Cell(UnsafeCell::new([0; MAX_IMAGE]));
/// `/etc/passwd`, read for the built-in policy's home (no session only).
static PASSWD: Cell<[u8; PASSWD_SIZE]> = Cell(UnsafeCell::new([0; PASSWD_SIZE]));
const PASSWD_SIZE: usize = 64 * 1024;

static STATE: AtomicPtr<State> = AtomicPtr::new(core::ptr::null_mut());
/// 0: not started; > 0: the tid of the thread building the state.
static BUILDER: AtomicI64 = AtomicI64::new(0);

/// The process state, built on first use. `None` only when called again by
/// the thread that is building it (re-entry): callers fail closed.
#[inline]
pub fn get() -> Option<&'static State> {
    let p = STATE.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null STATE points to SLOT, fully written before
        // publication and never written again.
        return Some(unsafe { &*p });
    }
    slow_get()
}

#[cold]
fn slow_get() -> Option<&'static State> {
    let me = i64::from(sys::gettid());
    loop {
        let p = STATE.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: as in `get`.
            return Some(unsafe { &*p });
        }
        match BUILDER.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let slot = SLOT.0.get().cast::<State>();
                // SAFETY: this thread holds BUILDER and STATE is unpublished:
                // nothing else reads or writes SLOT, IMAGE or PASSWD now.
                unsafe { build(slot) };
                STATE.store(slot, Ordering::Release);
                // SAFETY: just written and published.
                return Some(unsafe { &*slot });
            }
            Err(owner) if owner == me => return None,
            Err(owner) => {
                // Is the builder still a thread of this process? After a
                // fork during initialisation it is not: take over.
                // SAFETY: tgkill with signal 0 only checks existence.
                let alive =
                    unsafe { libc::syscall(libc::SYS_tgkill, sys::getpid(), owner as i32, 0) } == 0;
                if !alive {
                    let _ = BUILDER.compare_exchange(owner, 0, Ordering::AcqRel, Ordering::Acquire);
                } else {
                    // SAFETY: sched_yield has no arguments.
                    unsafe { libc::sched_yield() };
                }
            }
        }
    }
}

/// Read a whole file (NUL-terminated path) into `buf` with raw system calls;
/// `None` when it cannot be read or does not fit.
///
/// A read that returns less than it was asked for is taken as the end of
/// the file (what Linux does for regular files), which spares every process
/// a second `read` per state file. Should a file system ever return a short
/// read mid-file, the policy image fails to decode (every truncation is an
/// error) and the process refuses to run: never a wrong policy.
fn read_into<'a>(path: &[u8], buf: &'a mut [u8]) -> Option<&'a [u8]> {
    read_file(path, buf).ok()
}

/// [`read_into`], saying why not: the `errno`, or `EFBIG` when the file
/// does not fit.
fn read_file<'a>(path: &[u8], buf: &'a mut [u8]) -> Result<&'a [u8], i32> {
    let fd = sys::openat(
        libc::AT_FDCWD,
        path,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        0,
    );
    if fd < 0 {
        return Err(-fd);
    }
    let mut n = 0;
    let res = loop {
        if n == buf.len() {
            // Full: one more byte would make it too large.
            let mut probe = [0u8; 1];
            break match sys::read(fd, &mut probe) {
                0 => Ok(()),
                r if r < 0 => Err((-r) as i32),
                _ => Err(libc::EFBIG),
            };
        }
        let want = buf.len() - n;
        let r = sys::read(fd, &mut buf[n..]);
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r < 0 {
            break Err((-r) as i32);
        }
        n += r as usize;
        if r == 0 || (r as usize) < want {
            break Ok(());
        }
    };
    sys::close(fd);
    res.map(|()| &buf[..n])
}

fn lstat(path: &[u8]) -> Option<libc::stat> {
    // SAFETY: all-zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    (sys::fstatat(libc::AT_FDCWD, path, &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0).then_some(st)
}

fn stat(path: &[u8]) -> Option<libc::stat> {
    // SAFETY: all-zero is a valid `struct stat`.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    (sys::fstatat(libc::AT_FDCWD, path, &mut st, 0) == 0).then_some(st)
}

/// A path in the state directory: short, so it takes a few stack bytes (a
/// 4 KiB path buffer would touch a fresh stack page, a page fault, in every
/// process).
#[derive(Clone, Copy)]
pub struct StatePath {
    buf: [u8; 64],
    len: usize,
}

impl StatePath {
    /// The concatenation of `parts`; `None` if it holds a NUL or does not fit.
    pub fn new(parts: &[&[u8]]) -> Option<StatePath> {
        let mut p = StatePath {
            buf: [0; 64],
            len: 0,
        };
        for part in parts {
            let end = p.len + part.len();
            if end >= p.buf.len() || part.contains(&0) {
                return None;
            }
            p.buf[p.len..end].copy_from_slice(part);
            p.len = end;
        }
        Some(p)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// With the terminating NUL (the buffer past `len` is zero).
    pub fn with_nul(&self) -> &[u8] {
        &self.buf[..=self.len]
    }
}

/// `dir/name`.
fn join(dir: &StatePath, name: &[u8]) -> Option<StatePath> {
    StatePath::new(&[dir.bytes(), b"/", name])
}

/// The state directory, found without trusting the environment, and the
/// `lstat` of its `harness.pid` when that was needed to find it.
pub fn state_dir(uid: u32) -> Option<(StatePath, Option<libc::stat>)> {
    let run = StatePath::new(&[STATE_DIR])?;
    if let Some(st) = lstat(run.with_nul())
        && st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && st.st_uid == 0
        && let Some(pidf) = join(&run, b"harness.pid")
        && let Some(pid_st) = lstat(pidf.with_nul())
    {
        return Some((run, Some(pid_st)));
    }
    let mut d = [0u8; 20];
    let host = StatePath::new(&[b"/tmp/agent-vault-", sys::fmt_u64(u64::from(uid), &mut d)])?;
    let st = lstat(host.with_nul())?;
    let ok = st.st_mode & libc::S_IFMT == libc::S_IFDIR
        && (st.st_uid == uid || st.st_uid == 0)
        && st.st_mode & 0o022 == 0;
    ok.then_some((host, None))
}

fn parse_pid(bytes: &[u8]) -> i32 {
    let s = bytes.trim_ascii();
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    s.iter().fold(0i32, |v, d| v * 10 + i32::from(d - b'0'))
}

/// The harness's pid from `<dir>/harness.pid` (0: none, or not trustworthy).
fn harness_pid(dir: &StatePath, known: Option<libc::stat>, uid: u32) -> i32 {
    let Some(p) = join(dir, b"harness.pid") else {
        return 0;
    };
    let Some(st) = known.or_else(|| lstat(p.with_nul())) else {
        return 0;
    };
    // The pid file must not be writable by anyone but its owner (root or us).
    if st.st_mode & 0o022 != 0 || (st.st_uid != 0 && st.st_uid != uid) {
        return 0;
    }
    let mut buf = [0u8; 32];
    read_into(p.with_nul(), &mut buf).map_or(0, parse_pid)
}

/// One line on stderr: the policy image could not be used, and what now.
fn report_image(
    path: &[u8],
    why: &[u8],
    detail: Option<policy_core::image::DecodeError>,
    consequence: &[u8],
) {
    sys::write_all(2, b"agent-vault: ");
    sys::write_all(2, path);
    sys::write_all(2, b": ");
    sys::write_all(2, why);
    if let Some(e) = detail {
        let mut d = [0u8; 20];
        sys::write_all(2, b" (byte ");
        sys::write_all(2, sys::fmt_u64(e.at as u64, &mut d));
        sys::write_all(2, b": ");
        sys::write_all(2, e.what.as_bytes());
        sys::write_all(2, b")");
    }
    sys::write_all(2, consequence);
}

/// What `<dir>/policy.bin` gave.
enum Image {
    Loaded(View<'static>),
    /// Not there (`ENOENT`): the built-in policy, with one line.
    Missing,
    /// There but unreadable, too large, damaged or of another version:
    /// refuse, in an unprivileged process.
    Damaged,
}

/// Read and check `<dir>/policy.bin`; a missing or damaged image gets one
/// line on stderr.
///
/// # Safety
/// The caller holds BUILDER (exclusive use of IMAGE).
unsafe fn load_image(dir: &StatePath) -> Image {
    let Some(p) = join(dir, b"policy.bin") else {
        return Image::Missing;
    };
    // SAFETY: exclusive by the caller's contract; after this build the
    // buffer is never written again, so the 'static slices stay valid.
    let buf: &'static mut [u8; MAX_IMAGE] = unsafe { &mut *IMAGE.0.get() };
    let bytes = match read_file(p.with_nul(), buf) {
        Ok(b) => b,
        Err(libc::ENOENT) => {
            report_image(
                p.bytes(),
                b"no policy image",
                None,
                b"; using the built-in policy\n",
            );
            return Image::Missing;
        }
        // There but unreadable (permissions, a Landlock layer hiding it, no
        // fd left, too large): as unusable as a damaged one.
        Err(e) => {
            let mut d = [0u8; 20];
            sys::write_all(2, b"agent-vault: ");
            sys::write_all(2, p.bytes());
            sys::write_all(2, b": cannot read the policy image (errno ");
            sys::write_all(2, sys::fmt_u64(e as u64, &mut d));
            sys::write_all(2, b"); refusing to run\n");
            return Image::Damaged;
        }
    };
    match View::decode(bytes) {
        Ok(v) => Image::Loaded(v),
        Err(e) => {
            report_image(
                p.bytes(),
                b"damaged policy image",
                Some(e),
                b"; refusing to run (restart agent-init to write it again)\n",
            );
            Image::Damaged
        }
    }
}

/// The built-in policy's vault, as generated from `policy/default.toml`.
mod builtin_table {
    use policy_core::VaultKind;
    use policy_core::image::{Audit, CStr, Mode};
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// What expansion reads: this process's environment and home.
struct ProcessEnv {
    home: Option<&'static [u8]>,
}

impl policy_core::expand::Lookup for ProcessEnv {
    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        // SAFETY: used only while the state is built, before the program
        // can change its environment.
        unsafe { sys::getenv(name) }
    }
    fn home(&self) -> Option<&[u8]> {
        self.home
    }
}

/// The built-in policy: the vault of `policy/default.toml` expanded with
/// this process's home (`$HOME` when absolute, else `/etc/passwd`) and
/// environment, and one base rule granting everything (with no agent-init
/// session there is no base layer to mirror: the tool layer only hides the
/// vault). An entry that does not expand (say `~` with no home) is left
/// out. Encoded into IMAGE with the same encoder as `policy.bin`, then read
/// back like it.
///
/// # Safety
/// The caller holds BUILDER (exclusive use of IMAGE and PASSWD).
#[cold]
#[inline(never)]
unsafe fn builtin(uid: u32) -> View<'static> {
    // SAFETY: exclusive by the caller's contract.
    let passwd: &'static mut [u8; PASSWD_SIZE] = unsafe { &mut *PASSWD.0.get() };
    // SAFETY: as in `ProcessEnv::var`; the home is copied into the image.
    let home = match unsafe { sys::getenv(b"HOME") } {
        Some(h) if h.starts_with(b"/") => Some(h),
        _ => passwd_home(uid, passwd),
    };
    let env = ProcessEnv { home };
    let expand = |template: &[u8], out: &mut FixedPath| {
        policy_core::expand::absolute_path(&template[..template.len() - 1], &env, out)
    };
    // SAFETY: exclusive by the caller's contract; never written again after
    // this build, so the view's 'static slices stay valid.
    let buf: &'static mut [u8; MAX_IMAGE] = unsafe { &mut *IMAGE.0.get() };
    let mut e = Encoder(SliceOut {
        buf: &mut buf[..],
        len: 0,
        overflow: false,
    });
    e.header(builtin_table::LANDLOCK, builtin_table::audit(), None);
    let mut path = FixedPath::new();
    // An entry is kept when it expands and no earlier entry expanded to the
    // same path (as agent-init merges them; `CLAUDE_CONFIG_DIR=~/.claude`).
    let kept = |i: usize, path: &mut FixedPath| {
        if !expand(builtin_table::VAULT[i].1, path) {
            return false;
        }
        let mut earlier = FixedPath::new();
        !(0..i).any(|j| {
            expand(builtin_table::VAULT[j].1, &mut earlier) && earlier.as_bytes() == path.as_bytes()
        })
    };
    let n = (0..builtin_table::VAULT.len())
        .filter(|&i| kept(i, &mut path))
        .count();
    e.count(n);
    for (i, (name, _, kind, rel_exceptions)) in builtin_table::VAULT.iter().enumerate() {
        if !kept(i, &mut path) {
            continue;
        }
        e.entry(&name[..name.len() - 1], path.as_bytes(), *kind);
        // An exception whose full path does not fit is left out: the entry
        // then covers that part too (stricter, never looser).
        let here = path.len();
        let fits = |x: &&[u8], path: &mut FixedPath| {
            let ok = path.push(&x[..x.len() - 1]);
            path.truncate(here);
            ok
        };
        e.count(rel_exceptions.iter().filter(|x| fits(x, &mut path)).count());
        for x in *rel_exceptions {
            if path.push(&x[..x.len() - 1]) {
                e.str(path.as_bytes());
            }
            path.truncate(here);
        }
    }
    e.count(builtin_table::SECRET_ENV.len());
    for s in builtin_table::SECRET_ENV {
        e.str(&s[..s.len() - 1]);
    }
    e.count(1);
    e.rule(b"/", Access::ALL);
    let SliceOut { buf, len, overflow } = e.0;
    let image: &'static [u8] = &buf[..len];
    match View::decode(image) {
        Ok(v) if !overflow => v,
        // Not reachable with the generated table (a test decodes it); if it
        // ever were, an empty vault would be a silent fallback: refuse instead.
        _ => {
            sys::write_all(
                2,
                b"agent-vault: the built-in policy does not encode; refusing to run\n",
            );
            sys::exit_now(126)
        }
    }
}

/// The home of `uid` from `/etc/passwd` (read raw: `getpwuid` would open
/// files through our own hooks during initialisation).
fn passwd_home(uid: u32, buf: &'static mut [u8]) -> Option<&'static [u8]> {
    let text = read_into(b"/etc/passwd\0", buf)?;
    let mut d = [0u8; 20];
    let want = sys::fmt_u64(u64::from(uid), &mut d);
    for line in text.split(|&b| b == b'\n') {
        let mut f = line.split(|&b| b == b':');
        let (_, _, u, _, _, h) = (f.next(), f.next(), f.next(), f.next(), f.next(), f.next());
        if u == Some(want)
            && let Some(h) = h
            && h.starts_with(b"/")
        {
            return Some(h);
        }
    }
    None
}

/// Fill `st` (the uninitialised SLOT).
///
/// # Safety
/// The caller holds BUILDER.
unsafe fn build(st: *mut State) {
    let uid = sys::getuid();
    let init_pid = sys::getpid();
    // CAP_SYS_ADMIN: can rewrite /etc/ld.so.preload, so checking it is theatre.
    // PID 1: the container's init, agent-init itself, which must seed the
    // vault as root before any harness exists (default Docker grants no
    // CAP_SYS_ADMIN). No tool can become PID 1: seccomp denies new PID
    // namespaces, and `docker exec` never starts one.
    let privileged = sys::cap_effective_low() & (1 << 21) != 0 || init_pid == 1;
    // SAFETY: SLOT is ours (BUILDER); writing every field through raw
    // pointers before any reference to the whole State exists.
    unsafe {
        Table::init(core::ptr::addr_of_mut!((*st).entries));
        Table::init(core::ptr::addr_of_mut!((*st).existing));
        Table::init(core::ptr::addr_of_mut!((*st).watched_devs));
        core::ptr::addr_of_mut!((*st).file_aliases).write(false);
        core::ptr::addr_of_mut!((*st).harness_pid).write(0);
        core::ptr::addr_of_mut!((*st).init_pid).write(init_pid);
        core::ptr::addr_of_mut!((*st).privileged).write(privileged);
    }
    let dir = state_dir(uid);
    // SAFETY: BUILDER is held (this function's contract).
    let image = dir.as_ref().map(|(d, _)| unsafe { load_image(d) });
    let policy = match image {
        Some(Image::Loaded(v)) => v,
        // A session whose policy cannot be trusted: a tool must not guess
        // the vault. (The privileged are exempt from the checks anyway.)
        Some(Image::Damaged) if !privileged => sys::exit_now(126),
        // SAFETY: as above.
        _ => unsafe { builtin(uid) },
    };
    // SAFETY: SLOT is ours; the last field.
    unsafe { core::ptr::addr_of_mut!((*st).policy).write(policy) };
    // SAFETY: every field is initialised now.
    let st = unsafe { &mut *st };
    if let Some((d, pid_st)) = &dir {
        st.harness_pid = harness_pid(d, *pid_st, uid);
    }

    let policy: View<'static> = st.policy;
    for e in policy.vault() {
        let p = e.path.bytes();
        let s = stat(e.path.with_nul());
        if e.kind == VaultKind::File && s.is_some_and(|s| s.st_nlink > 1) {
            st.file_aliases = true;
        }
        let id = s.map(|s| FileId {
            dev: s.st_dev,
            ino: s.st_ino,
        });
        // The image holds at most MAX_VAULT entries: the pushes fit.
        st.entries.push(VaultRef {
            path: p,
            basename: policy_core::pathbuf::last_component(p),
            kind: e.kind,
            exceptions: e.exceptions,
            id,
        });
        let dev = match id {
            Some(id) => {
                st.existing.push(id);
                Some(id.dev)
            }
            // The nearest existing ancestor's device: the entry may appear there.
            None => nearest_ancestor_dev(p),
        };
        if let Some(d) = dev
            && !st.watched_devs.as_slice().contains(&d)
        {
            st.watched_devs.push(d);
        }
    }
}

/// Out of line: its path buffer is a stack page, needed only for a vault
/// entry that does not exist.
#[inline(never)]
fn nearest_ancestor_dev(path: &[u8]) -> Option<u64> {
    let mut p = FixedPath::from_bytes(path)?;
    while p.len() > 1 {
        let cut = p.as_bytes().iter().rposition(|&b| b == b'/').unwrap_or(0);
        p.truncate(cut.max(1));
        if let Some(s) = stat(p.as_bytes_with_nul()) {
            return Some(s.st_dev);
        }
    }
    None
}
