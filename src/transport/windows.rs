//! Windows workers (Win32-OpenSSH): the fixed command lines trustmesh runs
//! there, and the paths it uses. Pure: every text here is built from fixed
//! templates and checked values, and unit-tested to the byte.
//!
//! A Windows account's files are read and replaced over SFTP like any
//! `access: sftp` node's ([`crate::transport::sftp`]); its remote shell is
//! `cmd.exe` or PowerShell (sshd's `DefaultShell`), not `sh`. The few steps
//! that need a command therefore use lines that mean the same under both:
//!
//! - **Administrator detection**: `whoami /groups` (no argument to quote),
//!   an administrator being a member of `BUILTIN\Administrators`
//!   (`S-1-5-32-544`). Such an account's keys are read by sshd from
//!   [`ADMIN_AUTHORIZED_KEYS`], not from `%USERPROFILE%\.ssh`.
//! - **Key generation**: `ssh-keygen` needs an empty passphrase, `-N ""`.
//!   `cmd.exe` passes `""` through and ssh-keygen reads an empty argument,
//!   but Windows PowerShell 5 *drops* an empty-string argument to a native
//!   program, so ssh-keygen sees `-N -f ...` and fails (or takes `-f` as the
//!   passphrase). No spelling of the argument survives both shells (`'""'`
//!   is right for PowerShell 5 and reaches ssh-keygen as two quote
//!   characters from cmd). So the line is
//!   `powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand B64`:
//!   three plain words and a base64 text, which neither shell changes, and
//!   the script inside (UTF-16LE, base64) is parsed by Windows PowerShell
//!   5.1 only, where `-N '""'` is the known empty passphrase (with
//!   `$PSNativeCommandArgumentPassing = 'Legacy'` set first, so a newer
//!   PowerShell would pass it the same way). Values reach the script as
//!   PowerShell single-quoted strings (`'` doubled), never interpreted.
//! - **The ACL sshd demands** on `administrators_authorized_keys`:
//!   `icacls "PATH" /inheritance:r /grant *S-1-5-18:F /grant *S-1-5-32-544:F`.
//!   The path is double-quoted, which both shells read the same way as
//!   long as it holds none of `"`, `%`, `$`, `` ` `` or a control
//!   character: such a path is refused ([`WindowsError::Unquotable`]).
//!   (The group names are the English ones; a localized Windows names
//!   them differently.)
//!
//! Files that use CRLF keep it: [`crate::formats::lines`] writes new lines with the
//! file's own line ending.

use base64::Engine;

/// The file sshd reads the keys of an administrator account from.
pub const ADMIN_AUTHORIZED_KEYS: &str = r"C:\ProgramData\ssh\administrators_authorized_keys";

/// Lists the account's groups; the same under cmd.exe and PowerShell.
pub const ADMIN_CHECK: &str = "whoami /groups";

/// The SID of `BUILTIN\Administrators`.
const ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// A value that cannot be put on a Windows command line safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowsError {
    #[error("{what} {value:?} cannot be passed to a Windows command: it holds {bad}")]
    Unquotable {
        what: &'static str,
        value: String,
        bad: String,
    },
    #[error("{0:?} is not a path in the account's home (`~/...`)")]
    NotInHome(String),
}

/// Is the account an administrator, by what [`ADMIN_CHECK`] printed?
pub fn is_admin(whoami_groups: &str) -> bool {
    whoami_groups
        .lines()
        .any(|l| l.split_whitespace().any(|w| w == ADMINISTRATORS_SID))
}

/// The account's home as Windows writes it, from the SFTP server's
/// `realpath .` (`/C:/Users/alice` -> `C:\Users\alice`).
pub fn home_from_sftp(realpath: &str) -> String {
    let p = realpath.strip_prefix('/').unwrap_or(realpath);
    if is_drive_path(p) {
        p.replace('/', "\\")
    } else {
        realpath.to_string()
    }
}

/// `HOME\.ssh`.
pub fn ssh_dir(home: &str) -> String {
    format!("{}\\.ssh", home.trim_end_matches('\\'))
}

/// Where sshd reads the account's keys: [`ADMIN_AUTHORIZED_KEYS`] for an
/// administrator, else `HOME\.ssh\authorized_keys`.
pub fn authorized_keys_path(home: &str, admin: bool) -> String {
    if admin {
        ADMIN_AUTHORIZED_KEYS.to_string()
    } else {
        format!("{}\\authorized_keys", ssh_dir(home))
    }
}

/// `C:\x` or `C:/x`.
pub fn is_drive_path(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// A Windows path as the SFTP server takes it (`C:\x\y` -> `/C:/x/y`);
/// other paths unchanged.
pub fn sftp_path(p: &str) -> String {
    if is_drive_path(p) {
        format!("/{}", p.replace('\\', "/"))
    } else {
        p.to_string()
    }
}

/// A PowerShell single-quoted string: `'` doubled, nothing expanded.
pub fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn check(what: &'static str, value: &str, bad: &[char]) -> Result<(), WindowsError> {
    if let Some(c) = value.chars().find(|c| c.is_control() || bad.contains(c)) {
        return Err(WindowsError::Unquotable {
            what,
            value: value.to_string(),
            bad: format!("{c:?}"),
        });
    }
    Ok(())
}

/// The PowerShell script that generates a key pair at `path` (a plan path,
/// `~/.ssh/id_ed25519`) with no passphrase and prints its public half
/// between `TM-PUB-BEGIN`/`TM-PUB-END`, never overwriting a key. `bits`
/// is empty for the type's default.
pub fn keygen_script(
    path: &str,
    key_type: &str,
    bits: &str,
    comment: &str,
) -> Result<String, WindowsError> {
    let rel = path
        .strip_prefix("~/")
        .filter(|r| !r.is_empty() && !r.split('/').any(|s| s == ".." || s.is_empty()))
        .ok_or_else(|| WindowsError::NotInHome(path.to_string()))?;
    // Windows PowerShell 5 passes a native argument with a `"` in it
    // unescaped, so ssh-keygen would split it: refused.
    check("the key path", rel, &['"'])?;
    check("the key comment", comment, &['"'])?;
    check("the key type", key_type, &['"'])?;
    if !bits.chars().all(|c| c.is_ascii_digit()) {
        return Err(WindowsError::Unquotable {
            what: "the key size",
            value: bits.to_string(),
            bad: "a non-digit".into(),
        });
    }
    let rel = rel.replace('/', "\\");
    let bits_arg = if bits.is_empty() {
        String::new()
    } else {
        format!(" -b {bits}")
    };
    Ok(format!(
        "$ErrorActionPreference = 'Stop'\n\
         $PSNativeCommandArgumentPassing = 'Legacy'\n\
         $k = Join-Path $env:USERPROFILE {rel}\n\
         if (Test-Path -LiteralPath $k) {{ 'TM-ERR the key file exists already'; exit 3 }}\n\
         $d = Split-Path -Parent $k\n\
         if (-not (Test-Path -LiteralPath $d)) {{ New-Item -ItemType Directory -Path $d | Out-Null }}\n\
         & ssh-keygen.exe -q -t {kt}{bits_arg} -a 100 -N '\"\"' -C {comment} -f $k\n\
         if ($LASTEXITCODE -ne 0) {{ 'TM-ERR ssh-keygen failed'; exit 5 }}\n\
         'TM-PUB-BEGIN'\n\
         Get-Content -Raw -LiteralPath ($k + '.pub')\n\
         'TM-PUB-END'\n",
        rel = ps_quote(&rel),
        kt = ps_quote(key_type),
        comment = ps_quote(comment),
    ))
}

/// `powershell.exe ... -EncodedCommand B64` running `script`: the same
/// words under cmd.exe and PowerShell.
pub fn encoded_command(script: &str) -> String {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    format!(
        "powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand {}",
        base64::engine::general_purpose::STANDARD.encode(utf16)
    )
}

/// The key generation command line ([`keygen_script`], encoded).
pub fn keygen_command(
    path: &str,
    key_type: &str,
    bits: &str,
    comment: &str,
) -> Result<String, WindowsError> {
    Ok(encoded_command(&keygen_script(
        path, key_type, bits, comment,
    )?))
}

/// The ACL sshd demands on `path` (SYSTEM and Administrators only,
/// inheritance removed). The groups are named by their SIDs (`*S-1-5-18`
/// is SYSTEM, `*S-1-5-32-544` Administrators), which every language of
/// Windows knows: the English names fail on a localised Windows, after
/// `/inheritance:r` took the inherited rights away.
pub fn acl_command(path: &str) -> Result<String, WindowsError> {
    check("the path", path, &['"', '%', '$', '`'])?;
    Ok(format!(
        "icacls \"{path}\" /inheritance:r /grant *S-1-5-18:F /grant *S-1-5-32-544:F"
    ))
}

/// A path the SFTP server gave (`/C:/x/y`) as Windows writes it
/// (`C:\x\y`); other paths unchanged.
pub fn path_from_sftp(p: &str) -> String {
    home_from_sftp(p)
}

/// The PowerShell script that prints the security descriptor of `path` in
/// SDDL (SIDs, the same in every language of Windows) on a line of its
/// own, after `TM-SDDL `.
pub fn acl_read_script(path: &str) -> Result<String, WindowsError> {
    check("the path", path, &[])?;
    Ok(format!(
        "$ErrorActionPreference = 'Stop'\n\
         $a = Get-Acl -LiteralPath {path}\n\
         'TM-SDDL ' + $a.Sddl\n",
        path = ps_quote(path),
    ))
}

/// The command line that reads the ACL of `path` back ([`acl_read_script`],
/// encoded: the same words under cmd.exe and PowerShell).
pub fn acl_read_command(path: &str) -> Result<String, WindowsError> {
    Ok(encoded_command(&acl_read_script(path)?))
}

/// An ACL as read back from a node ([`acl_read_command`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclReadBack {
    /// The security descriptor, in SDDL.
    Sddl(String),
    /// It could not be read: why.
    Unreadable(String),
}

impl AclReadBack {
    /// What [`acl_read_command`] printed, and its exit status.
    pub fn from_output(stdout: &str, stderr: &str, success: bool) -> AclReadBack {
        let sddl = stdout
            .lines()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix("TM-SDDL "))
            .map(str::trim);
        match sddl {
            Some(s) if success && !s.is_empty() => AclReadBack::Sddl(s.to_string()),
            _ => {
                let why = format!("{} {}", stdout.trim(), stderr.trim());
                let why: String = why.trim().chars().take(200).collect();
                AclReadBack::Unreadable(if why.is_empty() {
                    "Get-Acl printed nothing".into()
                } else {
                    why
                })
            }
        }
    }
}

/// How an ACL compares with the one sshd demands on
/// `administrators_authorized_keys` (what [`acl_command`] sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclCheck {
    /// Why [`acl_command`] must run again (inheritance on, an inherited
    /// entry, SYSTEM or Administrators without full control); empty when
    /// it need not.
    pub repair: Vec<&'static str>,
    /// Other accounts an explicit entry lets in: [`acl_command`] leaves
    /// those, so they are reported, never "repaired" over and over.
    pub others: Vec<String>,
}

impl AclCheck {
    /// SYSTEM and Administrators only, inheritance removed.
    pub fn is_wanted(&self) -> bool {
        self.repair.is_empty() && self.others.is_empty()
    }
}

/// Compare an SDDL security descriptor (`O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)`)
/// with the ACL [`acl_command`] sets: a protected DACL (`P`), no inherited
/// entry (`ID`), and an allow entry with full control (`FA`, or
/// `0x1f01ff`) for SYSTEM (`SY`, `S-1-5-18`) and Administrators (`BA`,
/// `S-1-5-32-544`). Allow entries for anyone else are listed in
/// [`AclCheck::others`]. Deny entries take nothing away from what sshd
/// wants and are ignored. A text with no DACL needs the repair.
pub fn check_acl(sddl: &str) -> AclCheck {
    let mut check = AclCheck {
        repair: Vec::new(),
        others: Vec::new(),
    };
    let Some(at) = sddl.find("D:") else {
        check.repair.push("it has no access list");
        return check;
    };
    let dacl = &sddl[at + 2..];
    // The DACL ends where an `S:` (audit list) part starts, outside an entry.
    let flags_end = dacl.find('(').unwrap_or(dacl.len());
    let flags = &dacl[..flags_end];
    if !flags.contains('P') {
        check.repair.push("it inherits entries from its folder");
    }
    let (mut system, mut admins, mut inherited) = (false, false, false);
    let mut rest = &dacl[flags_end..];
    while let Some(open) = rest.strip_prefix('(') {
        let Some(close) = open.find(')') else { break };
        let ace: Vec<&str> = open[..close].split(';').collect();
        rest = &open[close + 1..];
        let [kind, ace_flags, rights, _, _, sid, ..] = ace[..] else {
            continue;
        };
        if ace_flags.contains("ID") {
            inherited = true;
        }
        if kind != "A" {
            continue;
        }
        let full = rights == "FA" || rights.eq_ignore_ascii_case("0x1f01ff");
        match sid {
            "SY" | "S-1-5-18" => system |= full,
            "BA" | "S-1-5-32-544" => admins |= full,
            other if !ace_flags.contains("ID") => check.others.push(other.to_string()),
            _ => {}
        }
    }
    if inherited {
        check.repair.push("it holds inherited entries");
    }
    if !system {
        check.repair.push("SYSTEM has no full control");
    }
    if !admins {
        check.repair.push("Administrators have no full control");
    }
    check.others.sort();
    check.others.dedup();
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &str) -> String {
        let b64 = line.rsplit(' ').next().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    }

    #[test]
    fn paths_of_an_account() {
        let home = home_from_sftp("/C:/Users/alice");
        assert_eq!(home, r"C:\Users\alice");
        assert_eq!(ssh_dir(&home), r"C:\Users\alice\.ssh");
        assert_eq!(
            authorized_keys_path(&home, false),
            r"C:\Users\alice\.ssh\authorized_keys"
        );
        assert_eq!(
            authorized_keys_path(&home, true),
            r"C:\ProgramData\ssh\administrators_authorized_keys"
        );
        assert_eq!(
            sftp_path(ADMIN_AUTHORIZED_KEYS),
            "/C:/ProgramData/ssh/administrators_authorized_keys"
        );
        assert_eq!(sftp_path(".ssh/authorized_keys"), ".ssh/authorized_keys");
        // A server that already speaks Unix paths is taken as it is.
        assert_eq!(home_from_sftp("/home/bob"), "/home/bob");
    }

    #[test]
    fn administrators_are_found_by_their_sid() {
        let admin = "GROUP INFORMATION\r\n-----------------\r\n\r\nGroup Name  Type  SID  Attributes\r\n\
            BUILTIN\\Administrators  Alias  S-1-5-32-544  Mandatory group, Enabled by default, Enabled group, Group owner\r\n\
            BUILTIN\\Users  Alias  S-1-5-32-545  Mandatory group\r\n";
        assert!(is_admin(admin));
        let user = "BUILTIN\\Users  Alias  S-1-5-32-545  Mandatory group\r\n\
            NT AUTHORITY\\S-1-5-32-5440-not-a-sid  Well-known group  S-1-5-32-5440  x\r\n";
        assert!(!is_admin(user));
        assert_eq!(ADMIN_CHECK, "whoami /groups");
    }

    #[test]
    fn the_acl_command_is_pinned() {
        assert_eq!(
            acl_command(ADMIN_AUTHORIZED_KEYS).unwrap(),
            r#"icacls "C:\ProgramData\ssh\administrators_authorized_keys" /inheritance:r /grant *S-1-5-18:F /grant *S-1-5-32-544:F"#
        );
        for hostile in [
            r#"C:\x" & del C:\y"#,
            r"C:\%COMSPEC%",
            r"C:\$(Remove-Item x)",
            "C:\\`n",
            "C:\\a\nb",
        ] {
            assert!(
                matches!(acl_command(hostile), Err(WindowsError::Unquotable { .. })),
                "{hostile}"
            );
        }
    }

    #[test]
    fn the_acl_is_read_back_in_sddl_and_compared() {
        let script = acl_read_script(ADMIN_AUTHORIZED_KEYS).unwrap();
        assert_eq!(
            script,
            "$ErrorActionPreference = 'Stop'\n\
             $a = Get-Acl -LiteralPath 'C:\\ProgramData\\ssh\\administrators_authorized_keys'\n\
             'TM-SDDL ' + $a.Sddl\n"
        );
        assert_eq!(
            decode(&acl_read_command(ADMIN_AUTHORIZED_KEYS).unwrap()),
            script
        );
        assert!(acl_read_script("C:\\a\nb").is_err());
        assert_eq!(
            path_from_sftp("/C:/ProgramData/ssh/.trustmesh.Ab12Cd"),
            r"C:\ProgramData\ssh\.trustmesh.Ab12Cd"
        );
        // What the command printed (a banner of the shell around it).
        let good = "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)";
        let read = AclReadBack::from_output(&format!("motd\r\nTM-SDDL {good}\r\n"), "", true);
        assert_eq!(read, AclReadBack::Sddl(good.into()));
        assert!(matches!(
            AclReadBack::from_output("", "Get-Acl : Access is denied", false),
            AclReadBack::Unreadable(w) if w.contains("Access is denied")
        ));
        // What icacls sets, spelled by SID or alias, with an audit list.
        for ok in [
            good,
            "O:BAG:SYD:P(A;;FA;;;S-1-5-18)(A;;0x1f01ff;;;S-1-5-32-544)",
            "O:SYG:SYD:PAI(A;;FA;;;BA)(A;;FA;;;SY)S:AI",
        ] {
            assert!(check_acl(ok).is_wanted(), "{ok}: {:?}", check_acl(ok));
        }
        // Inherited, or a group without full control: to repair.
        for (bad, why) in [
            (
                "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1200a9;;;AU)",
                "inherits",
            ),
            (
                "O:BAG:SYD:PAI(A;ID;FA;;;SY)(A;;FA;;;BA)",
                "inherited entries",
            ),
            ("O:BAG:SYD:PAI(A;;FA;;;SY)", "Administrators"),
            ("O:BAG:SYD:PAI(A;;0x1200a9;;;SY)(A;;FA;;;BA)", "SYSTEM"),
            ("O:BAG:SY", "no access list"),
        ] {
            let c = check_acl(bad);
            assert!(c.repair.iter().any(|r| r.contains(why)), "{bad}: {c:?}");
        }
        // Another account's explicit entry: reported, not "repaired".
        let c =
            check_acl("O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;S-1-5-21-9-1001)(D;;FA;;;WD)");
        assert!(c.repair.is_empty(), "{c:?}");
        assert_eq!(c.others, ["S-1-5-21-9-1001"]);
    }

    #[test]
    fn the_keygen_command_is_pinned() {
        let line =
            keygen_command("~/.ssh/id_ed25519", "ed25519", "", "trustmesh:lab/win1").unwrap();
        assert!(
            line.starts_with("powershell.exe -NoLogo -NoProfile -NonInteractive -EncodedCommand ")
        );
        // Only base64 after the fixed words: nothing for cmd.exe or
        // PowerShell to interpret.
        let b64 = line.rsplit(' ').next().unwrap();
        assert!(b64
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
        assert_eq!(
            decode(&line),
            "$ErrorActionPreference = 'Stop'\n\
             $PSNativeCommandArgumentPassing = 'Legacy'\n\
             $k = Join-Path $env:USERPROFILE '.ssh\\id_ed25519'\n\
             if (Test-Path -LiteralPath $k) { 'TM-ERR the key file exists already'; exit 3 }\n\
             $d = Split-Path -Parent $k\n\
             if (-not (Test-Path -LiteralPath $d)) { New-Item -ItemType Directory -Path $d | Out-Null }\n\
             & ssh-keygen.exe -q -t 'ed25519' -a 100 -N '\"\"' -C 'trustmesh:lab/win1' -f $k\n\
             if ($LASTEXITCODE -ne 0) { 'TM-ERR ssh-keygen failed'; exit 5 }\n\
             'TM-PUB-BEGIN'\n\
             Get-Content -Raw -LiteralPath ($k + '.pub')\n\
             'TM-PUB-END'\n"
        );
        // The whole line, byte for byte.
        assert_eq!(
            keygen_command("~/.ssh/id_rsa", "rsa", "4096", "c").unwrap(),
            encoded_command(&keygen_script("~/.ssh/id_rsa", "rsa", "4096", "c").unwrap())
        );
        assert!(keygen_script("~/.ssh/id_rsa", "rsa", "4096", "c")
            .unwrap()
            .contains("-t 'rsa' -b 4096 -a 100"));
    }

    #[test]
    fn hostile_values_stay_strings() {
        // A `'` is doubled inside a single-quoted string: PowerShell
        // expands nothing there ($, backtick, ;).
        let s = keygen_script("~/it's $(x);`n/key", "ed25519", "", "c'; rm -r ~ #").unwrap();
        assert!(s.contains(r"$k = Join-Path $env:USERPROFILE 'it''s $(x);`n\key'"));
        assert!(s.contains("-C 'c''; rm -r ~ #' -f $k"));
        for (path, comment) in [
            ("~/.ssh/a\"b", "c"),
            ("~/.ssh/k", "a\"b"),
            ("~/.ssh/k", "a\nb"),
            ("/etc/k", "c"),
            ("~/../k", "c"),
            ("~/", "c"),
        ] {
            assert!(
                keygen_script(path, "ed25519", "", comment).is_err(),
                "{path:?}"
            );
        }
        assert!(keygen_script("~/.ssh/k", "ed25519", "1; x", "c").is_err());
    }

    #[test]
    fn crlf_files_keep_crlf() {
        let text = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNvbW1lbnQgb25lIGhlcmUgdG8gcGFkIGl0IG91dA me@pc\r\n";
        let f = crate::formats::authorized_keys::AuthorizedKeysFile::parse(text);
        let out = f
            .apply_edits_on_request(&[], &[], &["ssh-ed25519 AAAA trustmesh:lab/m".to_string()])
            .unwrap();
        assert_eq!(out, format!("{text}ssh-ed25519 AAAA trustmesh:lab/m\r\n"));
    }
}
