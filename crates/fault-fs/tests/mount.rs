//! The file system mounted for real: ordinary `std::fs` calls through the kernel.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use fault_fs::{Cut, Fault, FaultFs, Op};

/// The mounted file system, or `None` (printed) where FUSE cannot run.
fn mount() -> Option<FaultFs> {
    fault_fs::mount_or_skip("fault-fs mount tests")
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

fn read(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(path).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_power_cut_keeps_exactly_what_was_synced() {
    let Some(mut fs) = mount() else { return };
    let root = fs.path().to_owned();
    fs::create_dir(root.join("db")).unwrap();
    sync_dir(&root);
    let db = root.join("db");

    // Synced file, synced name.
    let mut f = File::create(db.join("kept")).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_all().unwrap();
    f.write_all(b" and not").unwrap();
    drop(f);
    // Synced file, named by the directory sync below.
    let mut g = File::create(db.join("named_by_dir_sync")).unwrap();
    g.write_all(b"x").unwrap();
    g.sync_data().unwrap();
    drop(g);
    sync_dir(&db);
    // Created after the directory sync: lost.
    File::create(db.join("late")).unwrap().sync_all().unwrap();
    // The classic atomic replace, without the directory sync at the end: undone.
    let mut tmp = File::create(db.join("CURRENT.tmp")).unwrap();
    tmp.write_all(b"new").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    fs::rename(db.join("CURRENT.tmp"), db.join("kept")).unwrap();
    assert_eq!(read(&db.join("kept")), b"new");

    let report = fs.cut_power(Cut::default()).unwrap();
    assert_eq!(read(&db.join("kept")), b"durable");
    assert_eq!(read(&db.join("named_by_dir_sync")), b"x", "its name was synced by the dir sync");
    assert!(!db.join("late").exists());
    assert!(!db.join("CURRENT.tmp").exists());
    assert!(report.bytes_discarded >= 8, "{report:?}");
    assert!(report.entries_dropped >= 2, "{report:?}");
}

#[test]
fn a_process_cut_while_writing_sees_eio_then_nothing_after_the_cut_is_kept() {
    let Some(mut fs) = mount() else { return };
    let path = fs.path().join("log");
    let mut f = File::create(&path).unwrap();
    sync_dir(fs.path());
    f.write_all(b"one").unwrap();
    f.sync_all().unwrap();
    fs.power_off();
    let err = f.write_all(b"two").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert!(f.sync_all().is_err());
    drop(f);
    fs.power_on(Cut::default()).unwrap();
    assert_eq!(read(&path), b"one");
    // Power is back: writes work again.
    OpenOptions::new().append(true).open(&path).unwrap().write_all(b"three").unwrap();
    assert_eq!(read(&path), b"onethree");
}

#[test]
fn injected_faults_fail_the_nth_operation() {
    let Some(fs) = mount() else { return };
    let mut f = File::create(fs.path().join("a")).unwrap();
    fs.inject(Fault::once(Op::Fsync, 2));
    f.write_all(b"a").unwrap();
    f.sync_all().unwrap();
    f.write_all(b"b").unwrap();
    assert_eq!(f.sync_all().unwrap_err().raw_os_error(), Some(libc::EIO));
    f.sync_all().unwrap();

    fs.inject(Fault::disk_full(1));
    let err = f.write_all(b"c").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(err.kind(), ErrorKind::StorageFull);
    assert!(f.write_all(b"d").is_err(), "a full disk stays full");
    fs.clear_faults();
    f.write_all(b"e").unwrap();
    drop(f);
    assert_eq!(read(&fs.path().join("a")), b"abe");
    assert!(fs.counts().get(Op::Write) >= 5);
    assert_eq!(fs.failed(), 3);
}

#[test]
fn hard_links_and_unlinked_open_files_behave() {
    let Some(mut fs) = mount() else { return };
    let root = fs.path().to_owned();
    fs::write(root.join("a"), b"shared").unwrap();
    File::open(root.join("a")).unwrap().sync_all().unwrap();
    fs::hard_link(root.join("a"), root.join("b")).unwrap();
    sync_dir(&root);
    let mut open = File::open(root.join("a")).unwrap();
    fs::remove_file(root.join("a")).unwrap();
    let mut bytes = Vec::new();
    open.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, b"shared");
    drop(open);
    let names: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["b"]);
    // The unlink was never made durable: both names come back.
    fs.cut_power(Cut::default()).unwrap();
    assert_eq!(read(&root.join("a")), b"shared");
    assert_eq!(read(&root.join("b")), b"shared");
}
