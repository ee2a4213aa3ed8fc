//! Reading a node that has no POSIX shell (`access: sftp`, Windows): its
//! files over SFTP ([`crate::transport::files::read_account`]), so the
//! planner gets the same [`LiveAccount`] the shell probe gives. A Windows
//! account is first asked whether it is an administrator (one fixed
//! command, [`crate::transport::windows::ADMIN_CHECK`]): its keys are then in
//! `administrators_authorized_keys`.

use std::time::{Duration, SystemTime};

use crate::model::inventory::{Access as Reach, Node, Os};
use crate::model::layout::NodeFiles;
use crate::model::state::LiveAccount;
use crate::plan::NodeState;
use crate::transport::files::{read_account, AccountRequest};
use crate::transport::{sftp, Host};

use super::unreachable;

/// Does trustmesh reach this node's files over SFTP?
pub(super) fn uses_sftp(node: &Node) -> bool {
    node.access == Reach::Sftp || node.os == Os::Windows
}

/// Read a node over SFTP (or with the probe, for a shell node).
pub(super) async fn read_remote(
    host: &Host,
    node: &Node,
    files: &NodeFiles,
    timeout: Duration,
) -> Result<LiveAccount, NodeState> {
    if !host.is_sftp() {
        return super::probe_remote(host, files, timeout).await;
    }
    let stopped = || {
        unreachable(
            "read over sftp",
            format!("no answer within {} s", timeout.as_secs()),
            Some("the host stopped answering; check it and raise --timeout for slow hosts".into()),
        )
    };
    match tokio::time::timeout(timeout * 2, read_sftp(host, node, files, timeout)).await {
        Ok(r) => r,
        Err(_) => Err(stopped()),
    }
}

async fn read_sftp(
    host: &Host,
    node: &Node,
    files: &NodeFiles,
    timeout: Duration,
) -> Result<LiveAccount, NodeState> {
    let Some(session) = host.session() else {
        return Err(unreachable("read over sftp", "no connection".into(), None));
    };
    let windows = node.os == Os::Windows;
    let admin = if windows {
        let out = host
            .run(crate::transport::windows::ADMIN_CHECK, b"", timeout)
            .await
            .map_err(|e| unreachable("administrator check", e.to_string(), None))?;
        crate::transport::windows::is_admin(&String::from_utf8_lossy(&out.stdout))
    } else {
        false
    };
    let files = files.clone().for_windows_admin(admin);
    let (read, stat_only) = files.probe_names();
    let req = AccountRequest {
        read,
        stat_only,
        user: node.user.clone().unwrap_or_default(),
        host_key_dirs: if windows {
            vec!["/C:/ProgramData/ssh".into()]
        } else {
            vec!["/etc/ssh".into()]
        },
        now: SystemTime::now(),
    };
    let mut fs = sftp::open(session).await.map_err(|e| {
        unreachable(
            "read over sftp",
            e.to_string(),
            Some(
                "the node must serve the sftp subsystem (`Subsystem sftp` in its sshd_config)"
                    .into(),
            ),
        )
    })?;
    let read = read_account(&mut fs, &req).await;
    fs.close().await;
    let mut account = read.map_err(|e| unreachable("read over sftp", e.to_string(), None))?;
    if windows {
        account.home = crate::transport::windows::home_from_sftp(&account.home);
        account.windows_admin = admin;
        if admin {
            account.windows_acl = read_admin_acl(host, &account, timeout).await;
        }
    }
    Ok(account)
}

/// The ACL of `administrators_authorized_keys` read back, when the file
/// exists: the planner repairs it when it is not the one sshd demands (a
/// failed `icacls` of an earlier apply included).
async fn read_admin_acl(
    host: &Host,
    account: &LiveAccount,
    timeout: Duration,
) -> Option<crate::transport::windows::AclReadBack> {
    use crate::transport::windows::{acl_read_command, AclReadBack, ADMIN_AUTHORIZED_KEYS};
    account.file(ADMIN_AUTHORIZED_KEYS)?.stat.as_ref()?;
    let line = match acl_read_command(ADMIN_AUTHORIZED_KEYS) {
        Ok(l) => l,
        Err(e) => return Some(AclReadBack::Unreadable(e.to_string())),
    };
    Some(match host.run(&line, b"", timeout).await {
        Ok(out) => AclReadBack::from_output(
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
            out.status.success(),
        ),
        Err(e) => AclReadBack::Unreadable(e.to_string()),
    })
}
