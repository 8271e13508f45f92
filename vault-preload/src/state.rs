//! The process state: who the harness is and the policy, built once per
//! process image, and the queries the hooks make on it.
//!
//! [`get`] is called by every hook and by the constructor; the first caller
//! builds the [`State`], in place in a static: it finds the state directory
//! ([`state_dir`]), loads agent-init's policy image ([`image_load`]) or,
//! without one, encodes the built-in policy ([`builtin`]), into a static
//! buffer; the view keeps slices into that buffer. It then unpacks the vault
//! entries once, so that no hook parses the image.
//!
//! A process already under the tool layer when it starts (every program a
//! tool runs) has its state built by its first hook call, not by the
//! constructor: the constructor only finds the state directory
//! ([`find_early`], kept here for that build) and probes the tool layer, so
//! a program that never calls a hook (`true`, `expr`, a pipeline's `tr`)
//! reads no policy image.
//!
//! The vault entries' identities ([`Identities`]: one `stat` per entry and
//! hidden path) are built on first use, not at start-up: only the full open
//! check and the tool-layer walk need them, and a tool under the tool layer
//! (every process a build starts) uses neither. Start-up only `stat`s the
//! vault `file` entries, to know whether one has another link
//! ([`State::light`]).
//!
//! Nothing allocates, here or later. Files are read with raw system calls,
//! so initialisation never re-enters our own `open` hooks.
//!
//! A state directory without its image gets the built-in policy; one with a
//! damaged image (or one of another version) gets exit 126 in every
//! unprivileged process: a tool never guesses the vault.

use crate::image_load::{self, Image};
use crate::lazy::Lazy;
use crate::state_dir::{self, Found, PROBE_ENTRY, StatePath};
use crate::{builtin, passwd, sys};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use policy_core::image::{MAX_HIDDEN, MAX_IMAGE, MAX_VAULT, Strs};
use policy_core::layout;
use policy_core::pathbuf::FixedPath;
use policy_core::pathbuf::is_within;
use policy_core::secret_env::SecretEnv;
use policy_core::{FileId, VaultKind, View};

/// Everything the hooks need, built once per process image.
pub struct State {
    /// The harness's pid when this process image started as the harness
    /// (its pid and start time are the recorded ones) or as a launched
    /// harness ([`state_dir::launched_pid`]: then its own pid); else 0.
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
    /// matcher: no parsing per open).
    entries: Table<VaultRef, MAX_VAULT>,
    /// agent-init's audit socket in the state directory (none without one).
    pub audit_socket: Option<StatePath>,
    /// agent-init's launch socket in the state directory, when the policy
    /// has launchers (none otherwise: no launcher is looked for).
    pub launch_socket: Option<StatePath>,
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
}

/// The identities of the vault entries and hidden paths, and the devices
/// they live on: what the full open check ([`crate::guard`]) and the
/// tool-layer walk need. Built on first use ([`State::identities`]), from
/// the file system as it is then.
pub struct Identities {
    /// Per vault entry, in the image's order: its identity when it exists.
    ids: Table<Option<FileId>, MAX_VAULT>,
    /// The identities of the vault entries and hidden paths that exist,
    /// packed (for the tool-layer walk).
    existing: Table<FileId, { MAX_VAULT + MAX_HIDDEN }>,
    /// Devices on which a vault entry (or, for a missing one, its nearest
    /// existing ancestor) lives: an fd on one of these is checked by path.
    watched_devs: Table<u64, MAX_VAULT>,
}

impl Identities {
    /// The vault entry whose own inode this is (the entry itself, or a hard
    /// link or symlink target of it).
    #[inline]
    pub fn match_id(&self, id: FileId) -> Option<usize> {
        self.ids.as_slice().iter().position(|e| *e == Some(id))
    }

    /// The identities of the vault entries and hidden paths that exist.
    pub fn vault_ids(&self) -> &[FileId] {
        self.existing.as_slice()
    }

    /// An fd on this device may be a vault entry under another name: check
    /// its real path.
    #[inline]
    pub fn watched(&self, dev: u64) -> bool {
        self.watched_devs.as_slice().contains(&dev)
    }
}

/// A fixed-capacity list that writes only the slots it uses: the state
/// lives in a static, and every page written is a page fault in every
/// process.
struct Table<T: Copy, const N: usize> {
    len: usize,
    items: [MaybeUninit<T>; N],
}

impl<T: Copy, const N: usize> Table<T, N> {
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

/// Note that this process is under the tool layer (the constructor's probe
/// said so, or this process applied it). The mark is inherited by fork, as
/// the Landlock domain is, and gone after exec (a new image).
pub fn mark_under_tool_layer() {
    STARTUP.under_tool_layer.store(true, Ordering::Relaxed);
}

/// [`mark_under_tool_layer`] was called in this process image.
#[inline]
pub fn under_tool_layer() -> bool {
    STARTUP.under_tool_layer.load(Ordering::Relaxed)
}

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
        !self.file_aliases && under_tool_layer()
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

    /// The rule name of vault entry `i`.
    pub fn rule_name(&self, i: usize) -> &'static [u8] {
        self.policy.entry(i).map_or(b"?", |e| e.name.bytes())
    }

    /// The vault's identities, built on first use (see the module
    /// documentation). `None` only when called while they are being built
    /// by this thread: callers fail closed.
    pub fn identities(&self) -> Option<&'static Identities> {
        IDENTITIES.get(|ids| {
            // SAFETY: `ids` is IDENTITIES's slot, held by this thread until
            // it is published (Lazy's contract).
            unsafe { build_identities(ids, &self.policy) }
        })
    }

    /// The policy's secret variables, unpacked for the environment filter
    /// ([`crate::env`]) on first use: in the harness, before its first fork
    /// ([`crate::hooks_spawn::before_fork`]), so that its children inherit
    /// them built instead of each writing the pages. `None` only when
    /// called while this thread builds them: callers fail closed.
    pub fn secret_env(&self) -> Option<&'static SecretEnv<'static>> {
        SECRET_ENV.get(|slot| {
            // SAFETY: `slot` is SECRET_ENV's, held by this thread until it is
            // published (Lazy's contract); `write` initialises all of it.
            unsafe { slot.write(SecretEnv::new(self.policy)) };
        })
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

/// A static the state's builder fills before publication.
struct Cell<T>(UnsafeCell<T>);
// SAFETY: written only by the thread building the state (or, for
// `early`, by the constructor), before it is published; read only through
// the published state's slices (`early`: after `early_set`).
unsafe impl<T> Sync for Cell<T> {}

/// For the constructor: the state directory ([`state_dir::find`]), kept
/// for the state's build. Called once, before the constructor builds
/// anything else.
pub fn find_early(uid: u32) -> Found {
    let found = state_dir::find(uid);
    if !STARTUP.early_set.load(Ordering::Acquire) {
        // SAFETY: written once, by the constructor, before `early_set` is
        // published (Release); read only after `early_set` (Acquire).
        unsafe { (*STARTUP.early.0.get()).write(found) };
        STARTUP.early_set.store(true, Ordering::Release);
    }
    found
}

/// Whether a process with pid `pid` is privileged: it holds CAP_SYS_ADMIN
/// (it can rewrite `/etc/ld.so.preload`, so checking it is theatre), or it
/// is PID 1, the container's init, agent-init itself, which must seed the
/// vault as root before any harness exists (default Docker grants no
/// CAP_SYS_ADMIN). No tool can become PID 1: seccomp denies new PID
/// namespaces, and `docker exec` never starts one.
pub fn privileged(pid: i32) -> bool {
    sys::cap_effective_low() & (1 << 21) != 0 || pid == 1
}

/// What a new program's start-up writes, and the state, in one block of
/// `.data`, the flags last. In `.bss` the constructor's first read of a
/// flag mapped the zero page and its writes faulted again, on each page
/// (bench/RESULTS.md runs 8 and 12). In `.data` they share the page the
/// loader makes private anyway: it zeroes the start of `.bss`, in the page
/// where `.data` ends, and the block holds all of `.data` but the
/// cache's fd number, so its flags, at its end, are in that page. The
/// state (about 5 KiB) comes first, and its other page is written only
/// when a hook builds it. With the RW segments page-aligned (build.rs), a
/// program that starts under the tool layer writes two pages of this
/// library: the relocations' and this one (bench/RESULTS.md run 13).
#[repr(C)]
struct Startup {
    state: Lazy<State>,
    /// The state directory the constructor found, with its harness record
    /// when finding it took one ([`find_early`]), for the state's build to
    /// use instead of looking again; valid once `early_set` is (written
    /// once, before the flag).
    early: Cell<MaybeUninit<Found>>,
    early_set: AtomicBool,
    under_tool_layer: AtomicBool,
}

#[unsafe(link_section = ".data.vault_preload_startup")]
static STARTUP: Startup = Startup {
    state: Lazy::new(),
    early: Cell(UnsafeCell::new(MaybeUninit::zeroed())),
    early_set: AtomicBool::new(false),
    under_tool_layer: AtomicBool::new(false),
};
static IDENTITIES: Lazy<Identities> = Lazy::new();
static SECRET_ENV: Lazy<SecretEnv<'static>> = Lazy::new();
/// The policy image, as read from `policy.bin`.
static IMAGE: Cell<[u8; MAX_IMAGE]> = Cell(UnsafeCell::new([0; MAX_IMAGE]));
/// `/etc/passwd`, read for the built-in policy's home (no session only).
static PASSWD: Cell<[u8; passwd::BUF_SIZE]> = Cell(UnsafeCell::new([0; passwd::BUF_SIZE]));

/// The process state, built on first use. `None` only when called again by
/// the thread that is building it (re-entry): callers fail closed.
#[inline]
pub fn get() -> Option<&'static State> {
    STARTUP.state.get(|slot| {
        // SAFETY: `slot` is the state's, held by this thread until it is
        // published (Lazy's contract): nothing else reads or writes it,
        // IMAGE or PASSWD now.
        unsafe { build(slot) }
    })
}

/// Write `$value` into a field of the value being built at `$st` (a Lazy slot),
/// through raw pointers: no reference to the whole State exists before
/// every field has a value. Only for [`build`].
macro_rules! init_field {
    ($st:ident . $($field:ident).+ = $value:expr) => {{
        // SAFETY: `$st` is a Lazy slot held by this thread (`build`'s and
        // `build_identities`' contract), a static valid for writes: the
        // field is in bounds.
        let field = unsafe { &raw mut (*$st).$($field).+ };
        // SAFETY: `field` points into the slot, valid for writes and
        // aligned; nothing reads it until the slot is published.
        unsafe { field.write($value) };
    }};
}

/// Fill `st` (the state's uninitialised slot).
///
/// # Safety
/// The caller holds the state's builder role (so also IMAGE and PASSWD).
unsafe fn build(st: *mut State) {
    let uid = sys::getuid();
    let init_pid = sys::getpid();
    let privileged = privileged(init_pid);
    // Empty tables: only `len` is written (slots past it are never read).
    init_field!(st.entries.len = 0);
    init_field!(st.file_aliases = false);
    init_field!(st.harness_pid = 0);
    init_field!(st.init_pid = init_pid);
    init_field!(st.privileged = privileged);
    let dir = if STARTUP.early_set.load(Ordering::Acquire) {
        // SAFETY: `early`'s cell, 'static; after `early_set` it is never
        // written again, so a shared reference is sound.
        let early = unsafe { &*STARTUP.early.0.get() };
        // SAFETY: `early_set` is set only after `early` was written (find_early).
        unsafe { early.assume_init() }
    } else {
        state_dir::find(uid)
    };
    init_field!(st.audit_socket = dir.as_ref().and_then(|(d, _)| crate::audit::socket_path(d)));
    init_field!(st.launch_socket = None);
    let image = dir.as_ref().map(|(d, _)| {
        // SAFETY: the state's builder role is held (this function's contract): nothing else
        // uses IMAGE; after this build it is never written again.
        let buf = unsafe { &mut *IMAGE.0.get() };
        image_load::load(d, buf)
    });
    let policy = match image {
        Some(Image::Loaded(v)) => v,
        // A session whose policy cannot be trusted: a tool must not guess
        // the vault. (The privileged are exempt from the checks anyway.)
        Some(Image::Damaged) if !privileged => sys::exit_now(126),
        _ => {
            // SAFETY: IMAGE's cell, 'static; the state's builder role is held, so nothing
            // else uses it, and the load above returned no view into it.
            let image = unsafe { &mut *IMAGE.0.get() };
            // SAFETY: PASSWD's cell, 'static; the state's builder role is held, so nothing
            // else uses it, and nothing has used it before.
            let passwd = unsafe { &mut *PASSWD.0.get() };
            // SAFETY: the state is being built (the state's builder role is held).
            unsafe { builtin::policy(uid, image, passwd) }
        }
    };
    init_field!(st.policy = policy); // the last field
    // SAFETY: `st` is the state's slot, ours while its builder role is held, and every field is
    // initialised now.
    let st = unsafe { &mut *st };
    if let Some((d, record)) = &dir {
        // A program that started under the tool layer is not the harness,
        // nor a launched one (neither is ever under it: the constructor's
        // probe, a vault entry, is theirs to read): its harness pid is 0
        // whatever the record says, so the record is not read.
        let record = if under_tool_layer() {
            None
        } else {
            record.get(d, uid)
        };
        st.harness_pid = state_dir::harness_pid(record, init_pid);
        // Only a policy with launchers: every other process pays nothing.
        if st.policy.launchers().next().is_some() {
            st.launch_socket = state_dir::join(d, layout::LAUNCH_SOCKET.name.as_bytes());
            if st.harness_pid == 0 {
                st.harness_pid = state_dir::launched_pid(d, uid, init_pid, &st.policy);
            }
        }
    }

    let policy: View<'static> = st.policy;
    for e in policy.vault() {
        let p = e.path.bytes();
        // A vault `file` with another link: see `file_aliases`. The only
        // `stat` at start-up; the rest waits for `identities`.
        if e.kind == VaultKind::File && sys::stat(e.path.with_nul()).is_some_and(|s| s.st_nlink > 1)
        {
            st.file_aliases = true;
        }
        // The image holds at most MAX_VAULT entries: the pushes fit.
        st.entries.push(VaultRef {
            path: p,
            basename: policy_core::pathbuf::last_component(p),
            kind: e.kind,
            exceptions: e.exceptions,
        });
    }
}

/// Fill `ids` (IDENTITIES's uninitialised slot) from `policy`: one `stat`
/// per vault entry and hidden path.
///
/// # Safety
/// The caller holds IDENTITIES's builder role.
unsafe fn build_identities(ids: *mut Identities, policy: &View<'static>) {
    // Empty tables: only `len` is written (slots past it are never read).
    init_field!(ids.ids.len = 0);
    init_field!(ids.existing.len = 0);
    init_field!(ids.watched_devs.len = 0);
    // SAFETY: `ids` is IDENTITIES's slot, ours while its builder role is
    // held, and every field is initialised now.
    let ids = unsafe { &mut *ids };
    for e in policy.vault() {
        let id = sys::stat(e.path.with_nul()).map(|s| FileId {
            dev: s.st_dev,
            ino: s.st_ino,
        });
        // The image holds at most MAX_VAULT entries: the pushes fit.
        ids.ids.push(id);
        let dev = match id {
            Some(id) => {
                ids.existing.push(id);
                Some(id.dev)
            }
            // The nearest existing ancestor's device: the entry may appear there.
            None => nearest_ancestor_dev(e.path.bytes()),
        };
        if let Some(d) = dev
            && !ids.watched_devs.as_slice().contains(&d)
        {
            ids.watched_devs.push(d);
        }
    }
    // The hidden paths (seed sources, `[filesystem] hidden`): the tool-layer
    // walk gives no rule to a sibling that is one of them under another name.
    for h in policy.hidden() {
        if let Some(s) = sys::stat(h.with_nul()) {
            // The image holds at most MAX_HIDDEN of them: the pushes fit.
            ids.existing.push(FileId {
                dev: s.st_dev,
                ino: s.st_ino,
            });
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
        if let Some(s) = sys::stat(p.as_bytes_with_nul()) {
            return Some(s.st_dev);
        }
    }
    None
}
