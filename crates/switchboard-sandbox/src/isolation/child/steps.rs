//! One step of assembling the sandbox's root ([`Step`]), in the child. The contract of
//! [`super`] applies: raw system calls only, no allocation, nothing that can panic.

use libc::{c_char, c_int, c_void};

use super::Stage;
use super::raw::{errno, fd_path, write_all};
use crate::isolation::plan::{MAX_SOURCES, Step};

/// `struct mount_attr` (`MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Run `step`; on failure the stage to report (errno is left as the failing call set it).
pub(super) unsafe fn run_step(step: &Step, source_fds: &[c_int; MAX_SOURCES]) -> Result<(), Stage> {
    // SAFETY: raw system calls on NUL-terminated paths the parent prepared and keeps alive,
    // and on stack values.
    unsafe {
        let ok = |r: c_int, stage| if r == 0 { Ok(()) } else { Err(stage) };
        match step {
            Step::Mkdir { path, mode } => {
                if libc::mkdir(path.as_ptr(), *mode) != 0 && errno() != libc::EEXIST {
                    return Err(Stage::Mkdir);
                }
                Ok(())
            }
            Step::Symlink { target, link } => ok(
                libc::symlink(target.as_ptr(), link.as_ptr()),
                Stage::Symlink,
            ),
            Step::Touch { path } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 {
                    return Err(Stage::Touch);
                }
                libc::close(fd);
                Ok(())
            }
            Step::Bind { source, target } => {
                let Some(&fd) = source_fds.get(*source) else {
                    return Err(Stage::Bind);
                };
                let mut path = [0u8; 32];
                fd_path(fd, &mut path);
                ok(
                    libc::mount(
                        path.as_ptr().cast::<c_char>(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ),
                    Stage::Bind,
                )
            }
            Step::BindPath { source, target } => ok(
                libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ),
                Stage::BindPath,
            ),
            Step::Remount { target, flags } => ok(
                libc::mount(
                    std::ptr::null(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | *flags,
                    std::ptr::null(),
                ),
                Stage::Remount,
            ),
            Step::ReadOnlyTree { target } => {
                let attr = MountAttr {
                    attr_set: MOUNT_ATTR_RDONLY,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                };
                let r = libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    libc::AT_RECURSIVE as u32,
                    &raw const attr,
                    std::mem::size_of::<MountAttr>(),
                );
                if r == 0 {
                    Ok(())
                } else {
                    Err(Stage::ReadOnlyTree)
                }
            }
            Step::Tmpfs {
                target,
                options,
                flags,
            } => ok(
                libc::mount(
                    c"tmpfs".as_ptr(),
                    target.as_ptr(),
                    c"tmpfs".as_ptr(),
                    *flags,
                    options.as_ptr().cast::<c_void>(),
                ),
                Stage::Tmpfs,
            ),
            Step::WriteFile { path, contents } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 || !write_all(fd, contents) {
                    return Err(Stage::WriteFile);
                }
                libc::close(fd);
                Ok(())
            }
            Step::Proc { target } => ok(
                libc::mount(
                    c"proc".as_ptr(),
                    target.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ),
                Stage::Proc,
            ),
            Step::Optional(inner) => match run_step(inner, source_fds) {
                Err(_) if matches!(errno(), libc::ENOENT | libc::EACCES) => Ok(()),
                other => other,
            },
        }
    }
}
