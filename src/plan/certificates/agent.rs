//! A user CA held by an ssh-agent (`certificates: { agent: ... }`): `ca`
//! names the CA's public key, the agent holds its private half and signs
//! (`ssh-keygen -s CA.pub -U`), and trustmesh never makes a CA nor reads
//! a private key. The manager's gather asked the agent what it holds
//! (`ssh-add -L`, [`AgentKeys`]); a certificate due while the agent cannot
//! sign is not planned, and its node's plan says why and what to do
//! ([`NodePlan::signing_blocked`]): the rest of the plan, plain edges and
//! `cert-authority` lines included, goes ahead.

use super::*;
use crate::model::inventory::certificates::{CaAgent, Certificates};
use crate::model::state::AgentKeys;

/// The step a blocked signing names.
const STEP: &str = "sign";

/// The CA as the agent holds it: its public key is `public` (the probe's
/// name of `ca`) in the manager's account `acc`, and the agent's keys are
/// the gather's.
pub(super) fn state(c: &Certificates, agent: &CaAgent, acc: &LiveAccount, public: &str) -> CaState {
    let private = c.ca.strip_suffix(".pub").unwrap_or(&c.ca);
    let add = || Hint::text(format!("add the CA to the agent: `ssh-add {private}`"));
    let block = |key, reason: String, hint: Hint| {
        CaState::Blocked(key, Finding::new(STEP, reason, Some(hint)))
    };
    let text = acc
        .file(public)
        .and_then(|f| f.content.as_deref())
        .map(String::from_utf8_lossy);
    let Some(key) = text.as_deref().and_then(PublicKey::parse) else {
        let why = match &text {
            None => "does not exist or cannot be read",
            Some(_) => "is not a public key",
        };
        return block(
            None,
            format!(
                "the user CA's public key {} {why}; with `agent:` trustmesh makes no CA",
                c.ca
            ),
            Hint::text(format!(
                "write the public key of the CA the agent holds there (`ssh-add -L` lists them; `ssh-keygen -y -f {private} > {}`)",
                c.ca
            )),
        );
    };
    let (t, b): (Arc<str>, Arc<str>) = (key.key_type.into(), key.base64.into());
    let fingerprint = kh::fingerprint_sha256(&b).unwrap_or_default();
    let known = Some((t.clone(), b.clone()));
    match acc.ca_agent.as_deref() {
        None => block(
            known,
            "the ssh-agent holding the user CA was not asked".into(),
            add(),
        ),
        Some(AgentKeys::NoSocket) => block(
            known,
            format!(
                "the user CA {} ({fingerprint}) is held by an ssh-agent, and SSH_AUTH_SOCK is not set where trustmesh runs",
                c.ca
            ),
            Hint::text(match agent {
                CaAgent::Environment => format!(
                    "run trustmesh where the agent is (`eval \"$(ssh-agent)\"`, then `ssh-add {private}`), or name its socket in `agent:`"
                ),
                CaAgent::Socket(s) => format!("start the agent at {s} and `ssh-add {private}`"),
            }),
        ),
        Some(AgentKeys::Unreachable { socket, reason }) => block(
            known,
            format!("no ssh-agent answered at {socket} (ssh-add -L: {reason})"),
            Hint::text(format!(
                "start the agent there (`ssh-agent -a {socket}`) and add the CA: `ssh-add {private}`"
            )),
        ),
        Some(AgentKeys::Holds { socket, keys }) => {
            let held = keys.iter().any(|k| {
                PublicKey::parse(k).is_some_and(|k| k.key_type == &*t && k.base64 == &*b)
            });
            if held {
                CaState::Agent(t, b, socket.clone())
            } else {
                block(
                    known,
                    format!(
                        "the ssh-agent at {socket} does not hold the user CA {} ({fingerprint})",
                        c.ca
                    ),
                    add(),
                )
            }
        }
    }
}

/// A node's certificate due (`reason`: `issue`, `renew: ...`) and not
/// signed: the CA's finding, said for this node.
pub(super) fn blocked(node: &str, reason: &str, why: &Finding) -> Finding {
    Finding::new(
        &why.step,
        format!(
            "the certificate of {node} is due ({reason}) and not signed: {}",
            why.reason
        ),
        why.hint.clone(),
    )
}

/// The plan's note on an agent that holds the CA.
pub(super) fn note(c: &Certificates, ca: &CaState) -> Option<String> {
    let CaState::Agent(_, _, socket) = ca else {
        return None;
    };
    Some(format!(
        "certificates: the user CA {} is held by the ssh-agent at {socket}: it signs every certificate, and trustmesh makes no CA",
        c.ca
    ))
}

/// Why `--rotate-keys @ca` is refused with an agent, and what to do.
pub(super) fn no_rotation(c: &Certificates) -> (String, Hint) {
    (
        format!(
            "an ssh-agent holds it ({}), and a rotation makes the new CA as a file on the manager",
            c.ca
        ),
        Hint::text(
            "make the new CA yourself and add it to the agent (`ssh-keygen -t ed25519 -f NEW`, `ssh-add NEW`), \
             then name NEW.pub in `ca:`: the next apply trusts it and signs every certificate again with it, \
             not make-before-break (an edge fails from its target's new line until its source's new certificate)",
        ),
    )
}
