//! `verify`: every trust edge tried for real, from its source.
//!
//! A plan compares files; files can look right and still not work: sshd may
//! refuse a key for a mode it dislikes, a `from=` option, a login shell that
//! is gone, a host key that changed after the files were read, a firewall
//! between two workers. The only proof that edge `A -> B` holds is that
//! account A can run `ssh B true` with `BatchMode=yes` and
//! `StrictHostKeyChecking=yes` and nothing else. This module does exactly
//! that for every edge of the trust graph, on A's host: over A's master
//! connection opened by [`crate::gather`], or locally when A is the manager.
//!
//! What it runs is one fixed command line per edge (every inventory value
//! through [`crate::transport::scripts::shell_quote`]), see [`command_line`]. It never
//! relaxes host key checking (strict checking only, nothing accepted on
//! first use) and never offers a password. `ControlPath=none` makes sure each attempt really
//! authenticates instead of riding on a multiplexed connection the account
//! may have open. Every attempt offers the source's own key and nothing
//! else (`IdentitiesOnly`, no agent, nothing forwarded): a key in the
//! operator's ssh-agent or another default key never makes an edge hold.
//! No attempt from the manager reads the account's own ssh config: each
//! gets a `-F` config of this run carrying the same settings, jump or not
//! (options given with `-o` do not reach a jump connection; a config file
//! does). A worker's attempt keeps the worker's own config (its network's
//! settings). The manager adds its known_hosts only when the inventory
//! names a non-default file, and reaches a node behind a jump host with
//! `-J`.
//!
//! Attempts run concurrently, but at most [`PER_TARGET_ATTEMPTS`] towards one
//! target at once (sshd's `MaxStartups 10:30:100` drops new connections past
//! 10 unauthenticated ones, and in a full mesh every node connects to every
//! other), at most [`PER_SOURCE_SESSIONS`] sessions on one source's master
//! connection (sshd's `MaxSessions 10`), and at most `concurrency` overall.
//! Each attempt is bounded by the timeout.
//!
//! The result is a [`VerifyReport`]; [`render_text`] draws it as a
//! source x target matrix followed by one line per failing edge, and
//! [`render_json`] as one JSON document. Both are pure and write into any
//! `Write`.
//!
//! | module | what |
//! |---|---|
//! | `report` | the report types: one [`EdgeOutcome`] per edge, the [`VerifySummary`] |
//! | `command` | the ssh command line of an edge, the manager's `-F` config |
//! | `interpret` | exit status and ssh's stderr sorted into an [`EdgeOutcome`] (pure) |
//! | `run` | the scheduler: caps per target, per source and overall |
//! | `certificates` | certificates ending within `renew_before`, warned about |
//! | `expiry` | an ended edge (`expires:` past): refused as expected, or a failure if it still holds |
//! | `output` | text and JSON rendering |

mod certificates;
mod command;
mod expiry;
mod interpret;
mod output;
mod report;
mod run;

pub use certificates::certificates_ending;
pub use command::{command_line, config_text, AttemptError, CommandSettings};
pub use interpret::{interpret, parse_exit, EdgeNames};
pub use output::{
    json_schema, render_json, render_text, summary_line, VerifyTextOptions, VERIFY_FORMAT_VERSION,
};
pub use report::{EdgeFailure, EdgeOutcome, EdgeResult, VerifyReport, VerifySummary};
pub use run::{
    command_settings, edges_in_scope, verify, VerifyOptions, PER_SOURCE_SESSIONS,
    PER_TARGET_ATTEMPTS,
};
