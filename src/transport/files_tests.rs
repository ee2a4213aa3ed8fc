//! The read and write sequences of [`super`] on an in-memory file tree:
//! cut transfers, edits made between the steps, links, owners.

use super::*;

pub(crate) use crate::node::memory::{MemFs as Mem, HOME};

/// A path of [`Mem::new`]'s tree, absolute.
pub(crate) fn abs(p: &str) -> String {
    Mem::new().abs(p)
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

const OLD: &[u8] = b"foreign line one\r\nssh-ed25519 AAAA trustmesh:c/m\r\n";
const NEW: &[u8] = b"foreign line one\r\nssh-ed25519 BBBB trustmesh:c/m\r\n";

fn replace<'a>(expected: &'a str, content: &'a [u8]) -> Replace<'a> {
    Replace {
        path: ".ssh/authorized_keys",
        expected,
        mode: "keep",
        content,
        owner: Some(1000),
        temp_name: ".trustmesh.AbC123",
    }
}

fn with_keys() -> Mem {
    let mut m = Mem::new();
    m.put_dir(".ssh", 0o700);
    m.put(".ssh/authorized_keys", 0o640, OLD);
    m
}

#[test]
fn a_file_is_replaced_through_a_renamed_temporary_file() {
    let mut m = with_keys();
    let expected = cksum(OLD);
    let out = block_on(replace_file(&mut m, &replace(&expected, NEW)));
    assert_eq!(out, Outcome::Ok);
    assert_eq!(m.content(".ssh/authorized_keys"), Some(NEW));
    // `keep`: the old mode stays.
    assert_eq!(m.files[&abs(".ssh/authorized_keys")].stat.mode, 0o640);
    assert!(m.temps().is_empty());
    // A new file gets the mode asked for.
    let mut m = Mem::new();
    m.put_dir(".ssh", 0o700);
    let r = Replace {
        mode: "0600",
        ..replace("absent", NEW)
    };
    assert_eq!(block_on(replace_file(&mut m, &r)), Outcome::Ok);
    assert_eq!(m.files[&abs(".ssh/authorized_keys")].stat.mode, 0o600);
}

#[test]
fn a_transfer_cut_half_way_leaves_the_file_whole() {
    for cut in [0, 1, NEW.len() / 2, NEW.len() - 1] {
        let mut m = with_keys();
        m.cut_after = Some(cut);
        let expected = cksum(OLD);
        let out = block_on(replace_file(&mut m, &replace(&expected, NEW)));
        assert!(
            matches!(out, Outcome::Failed(ref w) if w.contains("connection closed")),
            "{out:?}"
        );
        assert_eq!(m.content(".ssh/authorized_keys"), Some(OLD), "cut at {cut}");
        // The half-written temporary file could not be removed over the
        // dead connection: the next run sweeps it as a leftover.
        assert_eq!(m.temps(), vec![abs(".ssh/.trustmesh.AbC123")]);
        assert!(crate::gather::probe::is_leftover_name(".trustmesh.AbC123"));
    }
}

#[test]
fn an_edit_made_since_the_plan_is_never_overwritten() {
    // Before the write.
    let mut m = with_keys();
    let out = block_on(replace_file(&mut m, &replace("1 2", NEW)));
    assert_eq!(out, Outcome::Conflict(cksum(OLD)));
    assert_eq!(m.content(".ssh/authorized_keys"), Some(OLD));
    let mut m = with_keys();
    let expected = cksum(OLD);
    // Between the upload and the rename: the check right before the
    // rename sees it.
    struct EditAfterUpload(Mem);
    impl RemoteFiles for EditAfterUpload {
        async fn realpath(&mut self, p: &str) -> Result<String, FsError> {
            self.0.realpath(p).await
        }
        async fn lstat(&mut self, p: &str) -> Result<Option<Stat>, FsError> {
            self.0.lstat(p).await
        }
        async fn read(&mut self, p: &str) -> Result<Option<Vec<u8>>, FsError> {
            self.0.read(p).await
        }
        async fn read_prefix(&mut self, p: &str, n: usize) -> Result<Option<Vec<u8>>, FsError> {
            self.0.read_prefix(p, n).await
        }
        async fn list(&mut self, d: &str) -> Result<Vec<(String, Stat)>, FsError> {
            self.0.list(d).await
        }
        async fn create_new(&mut self, p: &str, m: u32, c: &[u8]) -> Result<(), FsError> {
            self.0.create_new(p, m, c).await?;
            self.0.put(".ssh/authorized_keys", 0o600, b"edited\n");
            Ok(())
        }
        async fn set_mode(&mut self, p: &str, m: u32) -> Result<(), FsError> {
            self.0.set_mode(p, m).await
        }
        async fn set_owner(&mut self, p: &str, u: u32, g: u32) -> Result<(), FsError> {
            self.0.set_owner(p, u, g).await
        }
        async fn rename_over(&mut self, f: &str, t: &str) -> Result<(), FsError> {
            self.0.rename_over(f, t).await
        }
        async fn remove(&mut self, p: &str) -> Result<(), FsError> {
            self.0.remove(p).await
        }
        async fn mkdir(&mut self, p: &str, m: u32) -> Result<(), FsError> {
            self.0.mkdir(p, m).await
        }
    }
    m.posix_rename = true;
    let mut e = EditAfterUpload(m);
    let out = block_on(replace_file(&mut e, &replace(&expected, NEW)));
    assert_eq!(out, Outcome::Conflict(cksum(b"edited\n")));
    assert_eq!(e.0.content(".ssh/authorized_keys"), Some(&b"edited\n"[..]));
    assert!(e.0.temps().is_empty(), "the temporary file is removed");
}

#[test]
fn links_foreign_owners_and_servers_without_posix_rename_are_refused() {
    let expected = cksum(OLD);
    let mut m = with_keys();
    m.stat_mut(".ssh/authorized_keys").unwrap().kind = FileKind::Symlink;
    assert!(matches!(
        block_on(replace_file(&mut m, &replace(&expected, NEW))),
        Outcome::Failed(w) if w.contains("symbolic link")
    ));
    let mut m = with_keys();
    m.stat_mut(".ssh/authorized_keys").unwrap().uid = 0;
    assert!(matches!(
        block_on(replace_file(&mut m, &replace(&expected, NEW))),
        Outcome::Failed(w) if w.contains("owned by uid 0")
    ));
    let mut m = with_keys();
    m.posix_rename = false;
    assert!(matches!(
        block_on(replace_file(&mut m, &replace(&expected, NEW))),
        Outcome::Failed(w) if w.contains("rename")
    ));
    assert_eq!(m.content(".ssh/authorized_keys"), Some(OLD));
    assert!(m.temps().is_empty());
}

#[test]
fn a_temporary_name_taken_already_is_left_alone() {
    let mut m = with_keys();
    m.put(".ssh/.trustmesh.AbC123", 0o600, b"someone's");
    let expected = cksum(OLD);
    let out = block_on(replace_file(&mut m, &replace(&expected, NEW)));
    assert!(
        matches!(out, Outcome::Failed(ref w) if w.contains("exists already")),
        "{out:?}"
    );
    assert_eq!(m.content(".ssh/.trustmesh.AbC123"), Some(&b"someone's"[..]));
    assert_eq!(m.content(".ssh/authorized_keys"), Some(OLD));
}

#[test]
fn the_account_reads_like_the_probe_reports_it() {
    let mut m = with_keys();
    m.put(".ssh/id_ed25519", 0o600, b"PRIVATE");
    m.put(".ssh/id_ed25519.pub", 0o644, b"ssh-ed25519 AAAA me\n");
    m.put(".ssh/.trustmesh.old123", 0o600, b"half");
    m.put_dir("/etc/ssh", 0o755);
    m.put(
        "/etc/ssh/ssh_host_ed25519_key.pub",
        0o644,
        b"# c\nssh-ed25519 HOST root@h\n\n",
    );
    m.put("/etc/ssh/ssh_host_ed25519_key", 0o600, b"PRIVATE HOST");
    let req = AccountRequest {
        read: vec![
            "authorized_keys".into(),
            "known_hosts".into(),
            "id_ed25519.pub".into(),
        ],
        stat_only: vec!["id_ed25519".into()],
        user: "u".into(),
        host_key_dirs: vec!["/etc/ssh".into()],
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + 600),
    };
    let a = block_on(read_account(&mut m, &req)).unwrap();
    assert_eq!(a.home, HOME);
    assert_eq!(a.uid, 1000);
    assert_eq!(a.ssh_dir.as_ref().unwrap().mode, 0o700);
    let names: Vec<&str> = a.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "authorized_keys",
            "known_hosts",
            "id_ed25519.pub",
            "id_ed25519"
        ]
    );
    assert_eq!(
        a.file("authorized_keys").unwrap().content.as_deref(),
        Some(OLD)
    );
    assert_eq!(a.file("known_hosts").unwrap().stat, None);
    let key = a.file("id_ed25519").unwrap();
    assert!(
        key.stat.is_some() && key.content.is_none(),
        "a private key is never read"
    );
    assert_eq!(a.host_keys, ["ssh-ed25519 HOST root@h"]);
    assert_eq!(a.leftovers, [".trustmesh.old123"]);
    // Younger than ten minutes: not a leftover yet.
    let young = AccountRequest {
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + 599),
        ..req.clone()
    };
    assert!(block_on(read_account(&mut m, &young))
        .unwrap()
        .leftovers
        .is_empty());
    // A private key where a public file should be is refused, not read.
    m.put(
        ".ssh/id_ed25519.pub",
        0o644,
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET\n",
    );
    let a = block_on(read_account(&mut m, &req)).unwrap();
    let misplaced = a.file("id_ed25519.pub").unwrap();
    assert!(misplaced.unreadable && misplaced.content.is_none());
}

#[test]
fn plan_names_map_to_server_paths_and_temp_names_are_leftover_names() {
    assert_eq!(server_path("authorized_keys"), ".ssh/authorized_keys");
    assert_eq!(server_path("~/keys/id"), "keys/id");
    assert_eq!(server_path("/etc/x"), "/etc/x");
    assert_eq!(
        server_path(crate::transport::windows::ADMIN_AUTHORIZED_KEYS),
        "/C:/ProgramData/ssh/administrators_authorized_keys"
    );
    let (a, b) = (temp_name(), temp_name());
    assert_ne!(a, b);
    assert!(crate::gather::probe::is_leftover_name(&a), "{a}");
    assert_eq!(a.len(), ".trustmesh.".len() + 6);
}

#[test]
fn a_private_key_under_a_public_name_is_refused_after_its_first_bytes() {
    // A real-looking key: its secret part is far past the prefix.
    let secret = "c2VjcmV0".repeat(60);
    for head in [
        "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\r\n",
        "-----BEGIN RSA PRIVATE KEY-----\n",
        "PuTTY-User-Key-File-3: ssh-ed25519\n",
    ] {
        let key = format!("{head}{secret}\n-----END OPENSSH PRIVATE KEY-----\n");
        let mut m = Mem::new();
        m.put_dir(".ssh", 0o700);
        m.put(".ssh/id_ed25519.pub", 0o644, key.as_bytes());
        m.put(".ssh/authorized_keys", 0o600, key.as_bytes());
        let req = AccountRequest {
            read: vec!["id_ed25519.pub".into(), "authorized_keys".into()],
            stat_only: Vec::new(),
            user: "u".into(),
            host_key_dirs: Vec::new(),
            now: SystemTime::UNIX_EPOCH,
        };
        let a = block_on(read_account(&mut m, &req)).unwrap();
        for name in ["id_ed25519.pub", "authorized_keys"] {
            let f = a.file(name).unwrap();
            assert!(f.unreadable && f.content.is_none(), "{head:?} {name}");
            assert!(f.stat.is_some());
        }
        // Two files, each read no further than the prefix.
        assert!(
            m.bytes_read <= 2 * KEY_PREFIX,
            "{head:?}: {} bytes read",
            m.bytes_read
        );
    }
    // A public file is still read whole.
    let mut m = with_keys();
    let long = format!("ssh-ed25519 {} me\n", "A".repeat(200));
    m.put(".ssh/id_ed25519.pub", 0o644, long.as_bytes());
    let req = AccountRequest {
        read: vec!["id_ed25519.pub".into()],
        stat_only: Vec::new(),
        user: "u".into(),
        host_key_dirs: Vec::new(),
        now: SystemTime::UNIX_EPOCH,
    };
    let a = block_on(read_account(&mut m, &req)).unwrap();
    assert_eq!(
        a.file("id_ed25519.pub").unwrap().content.as_deref(),
        Some(long.as_bytes())
    );
}
