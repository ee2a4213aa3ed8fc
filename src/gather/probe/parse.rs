//! Reading the probe's report (format v1, see `src/transport/scripts/probe.sh`) into
//! a [`LiveAccount`]: noise around the markers is skipped, anything else
//! that is not exactly the format is an error that says where.

use super::{ProbeError, BEGIN_MARKER, BEGIN_PREFIX, END_MARKER};
use crate::model::state::{FileKind, FileStat, LiveAccount, LiveFile, Privilege};

/// A cursor over the probe's stdout, line by line, with raw byte blocks.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn line_no(&self, at: usize) -> usize {
        self.buf[..at].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// The next line (without its `\n`) and its start offset. A last line
    /// without a newline is returned too (the end marker may lack one).
    fn next_line(&mut self) -> Option<(usize, &'a [u8])> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        match self.buf[start..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos = start + i + 1;
                Some((start, &self.buf[start..start + i]))
            }
            None => {
                self.pos = self.buf.len();
                Some((start, &self.buf[start..]))
            }
        }
    }

    /// A complete line (with its `\n`): used for records, so a record cut
    /// short by truncation is never taken for a whole one.
    fn record(&mut self, expecting: &'static str) -> Result<(usize, &'a [u8]), ProbeError> {
        let start = self.pos;
        match self.buf[start..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos = start + i + 1;
                Ok((start, &self.buf[start..start + i]))
            }
            None => {
                // The end marker may be the last line without a newline.
                if &self.buf[start..] == END_MARKER.as_bytes() {
                    self.pos = self.buf.len();
                    Ok((start, &self.buf[start..]))
                } else {
                    Err(ProbeError::Truncated { expecting })
                }
            }
        }
    }

    fn peek_record(&self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        rest.iter().position(|&b| b == b'\n').map(|i| &rest[..i])
    }

    fn bad(&self, at: usize, reason: impl Into<String>, text: &[u8]) -> ProbeError {
        let mut text = String::from_utf8_lossy(text).into_owned();
        if text.chars().count() > 120 {
            text = text.chars().take(120).collect::<String>() + "...";
        }
        ProbeError::BadRecord {
            line: self.line_no(at),
            reason: reason.into(),
            text,
        }
    }

    /// After a `data N` line: N raw bytes, `\n`, `end STATUS`. Returns the
    /// bytes when STATUS is 0, `None` when the read failed.
    fn data_block(&mut self, at: usize, line: &'a [u8]) -> Result<Option<Vec<u8>>, ProbeError> {
        let n: usize = std::str::from_utf8(&line[5..])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.bad(at, "bad byte count", line))?;
        let start = self.pos;
        // Content and its `\n` must fit; written so a huge count cannot
        // overflow (`n + 1` did, and the slice below panicked).
        if self.buf.len() - start <= n {
            return Err(ProbeError::Truncated {
                expecting: "reading a file's content",
            });
        }
        let content = &self.buf[start..start + n];
        if self.buf[start + n] != b'\n' {
            return Err(self.bad(
                at,
                "content longer than its byte count (did the file change while being probed?)",
                line,
            ));
        }
        self.pos = start + n + 1;
        let (end_at, end) = self.record("reading the end of a file's content")?;
        let status = end.strip_prefix(b"end ").ok_or_else(|| {
            self.bad(
                end_at,
                "content does not match its byte count (did the file change while being probed?)",
                end,
            )
        })?;
        if status == b"0" {
            Ok(Some(content.to_vec()))
        } else if !status.is_empty() && status.iter().all(|b| b.is_ascii_digit()) {
            Ok(None)
        } else {
            Err(self.bad(end_at, "bad end-of-content record", end))
        }
    }
}

fn parse_stat(text: &[u8]) -> Result<Option<FileStat>, &'static str> {
    if text == b"missing" {
        return Ok(None);
    }
    let text = std::str::from_utf8(text).map_err(|_| "stat record is not text")?;
    let fields: Vec<&str> = text.split(' ').collect();
    if fields.len() != 4 {
        return Err("stat record needs KIND MODE UID GID");
    }
    let kind = match fields[0] {
        "file" => FileKind::File,
        "dir" => FileKind::Dir,
        "symlink" => FileKind::Symlink,
        "other" => FileKind::Other,
        _ => return Err("unknown file kind"),
    };
    let mode = fields[1];
    if mode.len() != 4 || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err("mode is not four octal digits");
    }
    let mode = u32::from_str_radix(mode, 8).map_err(|_| "bad mode")?;
    let uid = parse_u32(fields[2]).ok_or("bad uid")?;
    let gid = parse_u32(fields[3]).ok_or("bad gid")?;
    Ok(Some(FileStat {
        kind,
        mode,
        uid,
        gid,
    }))
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Find the begin marker at the start of a line; return the offset just
/// after its line.
fn find_begin(stdout: &[u8]) -> Result<usize, ProbeError> {
    let mut r = Reader {
        buf: stdout,
        pos: 0,
    };
    while let Some((_, line)) = r.next_line() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == BEGIN_MARKER.as_bytes() {
            if r.pos > 0 && stdout[r.pos - 1] == b'\n' {
                return Ok(r.pos);
            }
            return Err(ProbeError::Truncated {
                expecting: "reading the begin marker",
            });
        }
        if let Some(rest) = line.strip_prefix(BEGIN_PREFIX.as_bytes()) {
            if let Some(version) = rest.strip_prefix(b" ") {
                return Err(ProbeError::UnsupportedVersion {
                    found: String::from_utf8_lossy(version).into_owned(),
                });
            }
        }
    }
    Err(ProbeError::NoBeginMarker { len: stdout.len() })
}

/// Parse the probe's stdout. Output before the begin marker and after the
/// end marker is ignored.
pub fn parse_probe_output(stdout: &[u8]) -> Result<LiveAccount, ProbeError> {
    let mut r = Reader {
        buf: stdout,
        pos: find_begin(stdout)?,
    };
    let mut user = None;
    let mut uid = None;
    let mut gid = None;
    let mut home = None;
    let mut hostname = None;
    let mut client = None;
    let mut home_stat = None;
    let mut ssh_dir = None;
    let mut files = Vec::new();
    let mut host_keys = Vec::new();
    let mut leftovers = Vec::new();
    let mut privilege = None;
    let mut sshd_version = None;

    loop {
        let (at, line) = r.record("reading the report (no end marker)")?;
        if line == END_MARKER.as_bytes() {
            break;
        }
        let (key, rest) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        let text = |r: &Reader, what: &str| -> Result<String, ProbeError> {
            String::from_utf8(rest.to_vec())
                .map_err(|_| r.bad(at, format!("{what} is not valid UTF-8"), line))
        };
        let set_once = |r: &Reader, slot: &mut Option<_>, value| -> Result<(), ProbeError> {
            if slot.is_some() {
                return Err(r.bad(at, "duplicate record", line));
            }
            *slot = Some(value);
            Ok(())
        };
        match key {
            b"error" => return Err(ProbeError::Remote(text(&r, "error message")?)),
            b"user" => {
                let v = text(&r, "user name")?;
                set_once(&r, &mut user, v)?;
            }
            b"hostname" => {
                let v = text(&r, "host name")?;
                set_once(&r, &mut hostname, v)?;
            }
            b"sshd-version" => {
                let v = text(&r, "sshd version")?;
                set_once(&r, &mut sshd_version, v)?;
            }
            b"client" => {
                let v = text(&r, "client address")?;
                set_once(&r, &mut client, v)?;
            }
            b"home" => {
                let v = text(&r, "home path")?;
                if v.is_empty() {
                    return Err(r.bad(at, "empty home path", line));
                }
                set_once(&r, &mut home, v)?;
            }
            b"uid" | b"gid" => {
                let v = std::str::from_utf8(rest)
                    .ok()
                    .and_then(parse_u32)
                    .ok_or_else(|| r.bad(at, "not a number", line))?;
                let slot = if key == b"uid" { &mut uid } else { &mut gid };
                if slot.is_some() {
                    return Err(r.bad(at, "duplicate record", line));
                }
                *slot = Some(v);
            }
            b"home-stat" | b"ssh-stat" => {
                let what = if key == b"home-stat" {
                    "the home directory"
                } else {
                    "~/.ssh"
                };
                if rest == b"error" {
                    return Err(ProbeError::Unstatable(what));
                }
                let st = parse_stat(rest).map_err(|e| r.bad(at, e, line))?;
                let slot = if key == b"home-stat" {
                    &mut home_stat
                } else {
                    &mut ssh_dir
                };
                if slot.is_some() {
                    return Err(r.bad(at, "duplicate record", line));
                }
                *slot = Some(st);
            }
            b"file" => files.push(file_record(&mut r, at, line, rest)?),
            b"privilege" => {
                let v = match rest {
                    b"root" => Privilege::Root,
                    b"sudo" => Privilege::Sudo,
                    b"none" => Privilege::None,
                    _ => return Err(r.bad(at, "privilege is root, sudo or none", line)),
                };
                if privilege.is_some() {
                    return Err(r.bad(at, "duplicate record", line));
                }
                privilege = Some(v);
            }
            b"leftover" => {
                let v = text(&r, "leftover name")?;
                if !is_leftover_name(&v) {
                    return Err(r.bad(at, "not a trustmesh temporary file name", line));
                }
                leftovers.push(v);
            }
            b"hostkey" => host_key_record(&mut r, &mut host_keys)?,
            _ => return Err(r.bad(at, "unknown record", line)),
        }
    }

    Ok(LiveAccount {
        user: user.ok_or(ProbeError::MissingField("user"))?,
        uid: uid.ok_or(ProbeError::MissingField("uid"))?,
        gid: gid.ok_or(ProbeError::MissingField("gid"))?,
        home: home.ok_or(ProbeError::MissingField("home"))?,
        hostname: hostname.ok_or(ProbeError::MissingField("hostname"))?,
        client_address: client,
        sshd_version,
        ca_agent: None,
        home_stat: home_stat.ok_or(ProbeError::MissingField("home-stat"))?,
        ssh_dir: ssh_dir.ok_or(ProbeError::MissingField("ssh-stat"))?,
        files,
        host_keys,
        proven_host_keys: Vec::new(),
        leftovers,
        privilege,
        windows_admin: false,
        windows_acl: None,
    })
}

/// A `file` record (`file read NAME` or `file stat NAME`, at `at`) and the
/// records that follow it: its stat, and its content when it was read.
fn file_record<'a>(
    r: &mut Reader<'a>,
    at: usize,
    line: &'a [u8],
    rest: &'a [u8],
) -> Result<LiveFile, ProbeError> {
    let (read, name) = if let Some(name) = rest.strip_prefix(b"read ") {
        (true, name)
    } else if let Some(name) = rest.strip_prefix(b"stat ") {
        (false, name)
    } else {
        return Err(r.bad(at, "file record needs `read` or `stat` and a name", line));
    };
    let name = String::from_utf8(name.to_vec())
        .map_err(|_| r.bad(at, "file name is not valid UTF-8", line))?;
    let (sat, sline) = r.record("reading a file's stat record")?;
    let st = sline
        .strip_prefix(b"stat ")
        .ok_or_else(|| r.bad(sat, "expected a stat record", sline))?;
    let mut file = LiveFile {
        name,
        stat: None,
        content: None,
        unreadable: false,
    };
    if st == b"error" {
        file.unreadable = true;
    } else {
        file.stat = parse_stat(st).map_err(|e| r.bad(sat, e, sline))?;
    }
    // Only files in the read group may carry content.
    if read && file.stat.as_ref().map(|s| &s.kind) == Some(&FileKind::File) {
        match r.peek_record() {
            Some(next) if next.starts_with(b"data ") => {
                let (dat, dline) = r.record("reading a data record")?;
                match r.data_block(dat, dline)? {
                    Some(bytes) => file.content = Some(bytes),
                    None => file.unreadable = true,
                }
            }
            Some(b"unreadable") | Some(b"refused") => {
                r.record("reading a file record")?;
                file.unreadable = true;
            }
            _ => {}
        }
    }
    Ok(file)
}

/// A `hostkey` record: the data record after it, its keys (comments and
/// blank lines left out) added to `host_keys`.
fn host_key_record(r: &mut Reader<'_>, host_keys: &mut Vec<String>) -> Result<(), ProbeError> {
    let (dat, dline) = r.record("reading a host key")?;
    if dline == b"unreadable" {
        return Ok(());
    }
    if !dline.starts_with(b"data ") {
        return Err(r.bad(dat, "expected a data record", dline));
    }
    if let Some(bytes) = r.data_block(dat, dline)? {
        for l in String::from_utf8_lossy(&bytes).lines() {
            let l = l.trim();
            if !l.is_empty() && !l.starts_with('#') {
                host_keys.push(l.to_string());
            }
        }
    }
    Ok(())
}

/// A temporary file name of the replace script: `.trustmesh.` and a few
/// plain characters, nothing that could name another path.
pub fn is_leftover_name(name: &str) -> bool {
    name.strip_prefix(".trustmesh.").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            && !rest.contains("..")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b"TRUSTMESH-PROBE-BEGIN v1\nuser u\nuid 1\ngid 2\nhostname h\nhome /h\nhome-stat dir 0755 1 2\nssh-stat missing\nfile read a\nstat file 0644 1 2\ndata 3\nx\ny\nend 0\nhostkey\ndata 26\n# c\r\nssh-ed25519 AAAA h\r\n\n\nend 0\nTRUSTMESH-PROBE-END\n";

    #[test]
    fn parse_synthetic_report() {
        let acct = parse_probe_output(GOOD).unwrap();
        assert_eq!(acct.user, "u");
        assert_eq!((acct.uid, acct.gid), (1, 2));
        assert_eq!(acct.ssh_dir, None);
        assert_eq!(acct.files[0].content.as_deref(), Some(&b"x\ny"[..]));
        assert_eq!(acct.host_keys, ["ssh-ed25519 AAAA h"]);
    }

    #[test]
    fn a_huge_byte_count_is_truncation_not_a_panic() {
        for n in [usize::MAX.to_string(), (usize::MAX - 1).to_string()] {
            let text = format!("TRUSTMESH-PROBE-BEGIN v1\nhostkey\ndata {n}\n");
            assert!(matches!(
                parse_probe_output(text.as_bytes()),
                Err(ProbeError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn parse_errors_say_what_failed() {
        let e = parse_probe_output(b"Welcome\n").unwrap_err();
        assert_eq!(e, ProbeError::NoBeginMarker { len: 8 });
        assert!(e.to_string().contains("nothing we recognise"));
        assert!(parse_probe_output(b"").is_err());

        let e = parse_probe_output(b"TRUSTMESH-PROBE-BEGIN v2\n").unwrap_err();
        assert_eq!(e, ProbeError::UnsupportedVersion { found: "v2".into() });

        let swap = |from: &str, to: &str| {
            let s = String::from_utf8(GOOD.to_vec())
                .unwrap()
                .replacen(from, to, 1);
            parse_probe_output(s.as_bytes())
        };
        match swap("uid 1\n", "uid x\n") {
            Err(ProbeError::BadRecord { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            swap("stat file 0644", "stat file 644"),
            Err(ProbeError::BadRecord { .. })
        ));
        assert!(matches!(
            swap("stat file 0644", "stat fifo 0644"),
            Err(ProbeError::BadRecord { .. })
        ));
        assert!(matches!(
            swap("gid 2\n", ""),
            Err(ProbeError::MissingField("gid"))
        ));
        assert!(matches!(
            swap("user u\n", "user u\nuser v\n"),
            Err(ProbeError::BadRecord { .. })
        ));
        assert!(matches!(
            swap("home /h\n", "home /h\nfrobnicate 1\n"),
            Err(ProbeError::BadRecord { .. })
        ));
        // Content that does not match its byte count.
        assert!(matches!(
            swap("data 3\n", "data 2\n"),
            Err(ProbeError::BadRecord { .. })
        ));
        assert!(matches!(
            swap("data 3\n", "data 4\n"),
            Err(ProbeError::BadRecord { .. })
        ));
        assert!(matches!(
            swap("data 3\n", "data 999\n"),
            Err(ProbeError::Truncated { .. })
        ));
        // A failed cat: no content, unreadable.
        let acct = swap("y\nend 0", "y\nend 1").unwrap();
        assert!(acct.files[0].unreadable && acct.files[0].content.is_none());
        // Content after a stat-only file is never accepted.
        assert!(matches!(
            swap("file read a", "file stat a"),
            Err(ProbeError::BadRecord { .. })
        ));
        assert_eq!(
            swap("home-stat dir 0755 1 2", "home-stat error"),
            Err(ProbeError::Unstatable("the home directory"))
        );
        assert_eq!(
            swap("user u\n", "error cannot enter the home directory\n"),
            Err(ProbeError::Remote("cannot enter the home directory".into()))
        );
        assert!(matches!(
            swap("TRUSTMESH-PROBE-END\n", ""),
            Err(ProbeError::Truncated { .. })
        ));
    }
}
