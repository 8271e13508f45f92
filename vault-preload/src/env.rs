//! Secret environment variables: removed from the environment of every
//! program the harness's children exec, and wiped in place in a tool that
//! starts with them (so `/proc/self/environ` no longer shows the values).

use crate::state::State;
use crate::sys;
use core::ffi::c_char;
use core::mem::MaybeUninit;

/// `entry` (`NAME=value`) is a secret variable. While this thread is
/// unpacking the secret names (a re-entry) every variable counts as secret.
fn is_secret(st: &State, entry: &[u8]) -> bool {
    let name = match entry.iter().position(|&b| b == b'=') {
        Some(i) => &entry[..i],
        None => entry,
    };
    st.secret_env().is_none_or(|s| s.is_secret(name))
}

/// A filtered copy of an `envp` array, in a stack array or (when large) an
/// anonymous mapping: no malloc, so it works in a vfork child. Only the
/// entries used are written (a harness child's stack pages are page
/// faults: an array zeroed up front wrote 2 KiB in every spawn).
pub struct EnvCopy {
    small: [MaybeUninit<*const c_char>; 256],
    big: *mut u8,
    big_len: usize,
}

impl EnvCopy {
    pub fn new() -> EnvCopy {
        EnvCopy {
            small: [const { MaybeUninit::uninit() }; 256],
            big: core::ptr::null_mut(),
            big_len: 0,
        }
    }

    /// Fill with the entries of `envp` that are not secret; returns the new
    /// NULL-terminated array (null when `envp` is null or memory ran out).
    ///
    /// # Safety
    /// `envp` must be null or a NULL-terminated array of C strings that stays
    /// valid while the result is used.
    pub unsafe fn filter(
        &mut self,
        st: &State,
        envp: *const *const c_char,
    ) -> *const *const c_char {
        if envp.is_null() {
            return envp;
        }
        let mut n = 0usize;
        // SAFETY: `envp` is a NULL-terminated array (the caller's contract)
        // and we stop at its terminator, so `n` is within it.
        while !unsafe { sys::c_array_at(envp, n) }.is_null() {
            n += 1;
        }
        let out: &mut [MaybeUninit<*const c_char>] = if n < self.small.len() {
            &mut self.small[..]
        } else {
            let len = (n + 1) * core::mem::size_of::<*const c_char>();
            let p = sys::mmap_anon(len);
            if p.is_null() {
                return core::ptr::null();
            }
            self.big = p;
            self.big_len = len;
            // SAFETY: a fresh mapping of `len` bytes, suitably aligned (page),
            // exclusively ours until `Drop`; MaybeUninit<T> has T's layout.
            unsafe {
                core::slice::from_raw_parts_mut(p.cast::<MaybeUninit<*const c_char>>(), n + 1)
            }
        };
        let mut k = 0;
        for i in 0..n {
            // SAFETY: `i < n`, inside the caller's array (alive for the call).
            let e = unsafe { sys::c_array_at(envp, i) };
            // SAFETY: `e` is a valid C string (caller's contract).
            let bytes = unsafe { sys::cstr_bytes(e) };
            if !is_secret(st, bytes) {
                out[k].write(e);
                k += 1;
            }
        }
        // `k <= n < out.len()`: the terminator fits. Entries 0..=k are
        // written, and only they are read (up to the terminator).
        out[k].write(core::ptr::null());
        out.as_ptr().cast::<*const c_char>()
    }
}

impl Default for EnvCopy {
    fn default() -> Self {
        EnvCopy::new()
    }
}

impl Drop for EnvCopy {
    fn drop(&mut self) {
        if !self.big.is_null() {
            // SAFETY: `big` is our mapping of `big_len` bytes and the filtered
            // array is no longer used (exec failed and returned).
            unsafe { sys::munmap(self.big, self.big_len) };
        }
    }
}

/// In a tool: overwrite the values of secret variables in place (the memory
/// `/proc/self/environ` shows) and remove them from `environ`. Called once,
/// from the constructor.
pub fn scrub_own(st: &State) {
    if st.policy.secret_env().next().is_none() && st.policy.secret_patterns().next().is_none() {
        return;
    }
    // In the constructor no other thread of this program runs yet (or, for
    // a dlopen, the libc env contract applies): `environ` and its strings
    // stay as they are while we walk them, but for our own `unsetenv`.
    let env = sys::environ() as *const *mut c_char;
    if env.is_null() {
        return;
    }
    let mut i = 0;
    loop {
        // SAFETY: `env` is libc's `environ`, a NULL-terminated array; we stop
        // at its terminator, so `i` is within it.
        let e = unsafe { sys::c_array_at(env, i) };
        if e.is_null() {
            return;
        }
        // SAFETY: a non-null `environ` entry is a C string ("NAME=value")
        // owned by the process, alive while it is in `environ`.
        let bytes = unsafe { sys::cstr_bytes(e) };
        if is_secret(st, bytes)
            && let Some(eq) = bytes.iter().position(|&b| b == b'=')
        {
            let len = bytes.len();
            // SAFETY: `eq + 1 <= len`: the start of the value, inside the
            // string `e` (or its NUL).
            let value = unsafe { e.add(eq + 1) };
            // SAFETY: `value` is followed by `len - eq - 1` bytes of the
            // string `e` (its value, before the NUL), writable process
            // memory; only the name, before them, is read afterwards.
            unsafe { core::ptr::write_bytes(value, 0, len - eq - 1) };
            let mut name = [0u8; 256];
            if eq < name.len() {
                name[..eq].copy_from_slice(&bytes[..eq]);
                // SAFETY: `name` is a NUL-terminated copy of the name on our
                // stack (zero past `eq`), borrowed for the call.
                // unsetenv shifts later entries down: stay at `i` (unless it
                // refused the name: the value is wiped, go on).
                if unsafe { libc::unsetenv(name.as_ptr().cast()) } == 0 {
                    continue;
                }
            }
        }
        i += 1;
    }
}
