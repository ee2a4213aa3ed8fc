//! `rotate_swap.sh` in certificate mode, under the shell matrix: a
//! certificate of the new key moves with the pair, the old one aside.

use super::shells::SHELLS;
use super::tests::Home;
use super::*;

#[test]
fn rotate_swap_moves_the_new_keys_certificate_with_it() {
    for sh in SHELLS {
        let home = Home::new(
            sh,
            &[
                ("id", b"old private"),
                ("id.pub", b"old public"),
                ("id-cert.pub", b"old cert"),
                ("id.new", b"new private"),
                ("id.new.pub", b"new public"),
                ("id.new-cert.pub", b"new cert"),
            ],
        );
        let args = [".ssh/id", ".ssh/id.new", ".ssh/id.old-abc"];
        let (o, out) = home.run(ROTATE_SWAP, &args, b"");
        assert_eq!(o, Outcome::Ok, "{sh:?}: {out}");
        let read = |n: &str| std::fs::read_to_string(home.ssh.join(n)).ok();
        assert_eq!(read("id").as_deref(), Some("new private"), "{sh:?}");
        assert_eq!(read("id-cert.pub").as_deref(), Some("new cert"), "{sh:?}");
        assert_eq!(read("id.old-abc-cert.pub").as_deref(), Some("old cert"));
        assert_eq!(read("id.new-cert.pub"), None);
    }
}
