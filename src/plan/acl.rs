//! The ACL of a Windows administrator's `administrators_authorized_keys`
//! (see [`crate::transport::windows`]): the planning of its `SetAcl` step.

use super::{Change, NodePlan};
use crate::model::state::LiveAccount;

/// The ACL sshd demands on a Windows administrator's
/// `administrators_authorized_keys`: after a write of the file (apply sets
/// it on the temporary file before the rename, and once more on the file),
/// and whenever the ACL read back is not that one (a failed `icacls` of
/// an earlier apply, a change made by hand).
pub(super) fn windows_acl(acc: &LiveAccount, plan: &mut NodePlan) {
    use crate::transport::windows::{check_acl, AclReadBack};
    let admin = crate::transport::windows::ADMIN_AUTHORIZED_KEYS;
    let writes = plan
        .changes
        .iter()
        .any(|c| matches!(c, Change::EditFile(e) if e.path == admin));
    let mut repair = false;
    match &acc.windows_acl {
        Some(AclReadBack::Sddl(sddl)) => {
            let check = check_acl(sddl);
            repair = !check.repair.is_empty();
            if repair && !writes {
                plan.warnings.push(format!(
                    "{admin}: its ACL is not the one sshd demands ({}): set again",
                    check.repair.join(", ")
                ));
            }
            if !check.others.is_empty() {
                plan.warnings.push(format!(
                    "{admin}: its ACL also lets in {}, which trustmesh does not take away: sshd ignores the file if \
                     one of them may write it; check with `icacls \"{admin}\"` and remove what is not wanted \
                     (`icacls \"{admin}\" /remove *SID`)",
                    check.others.join(", ")
                ));
            }
        }
        Some(AclReadBack::Unreadable(why)) if !writes => plan.warnings.push(format!(
            "{admin}: its ACL could not be read back ({why}): check it with `icacls \"{admin}\"`"
        )),
        _ => {}
    }
    if writes || repair {
        if let Ok(command) = crate::transport::windows::acl_command(admin) {
            plan.changes.push(Change::SetAcl {
                path: admin.to_string(),
                command,
            });
        }
    }
}
