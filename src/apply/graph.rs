//! The action DAG of a plan: which action waits for which (see
//! [`super`]), apart from the executor that runs it.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::plan::{Change, NodeStatus, Plan};

mod certificates;
mod host_certificates;

use host_certificates::is_ca_names;

#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// `~/.ssh`, or a folder in it (`~/.ssh/config.d`).
    MkDir {
        path: String,
    },
    Keygen {
        path: String,
        key_type: String,
    },
    Edit {
        change: usize,
    },
    /// A [`crate::plan::BlockWrite`]: a block or a file trustmesh owns.
    Block {
        change: usize,
    },
    Mode {
        path: String,
        to: u32,
    },
    Owner {
        path: String,
        to: u32,
    },
    /// Remove a temporary file an interrupted apply left.
    RemoveLeftover {
        path: String,
    },
    /// Windows: set the ACL sshd demands on a file.
    SetAcl {
        path: String,
        command: String,
    },
    /// A rotation: a fresh connection from this node to the node of plan
    /// index `target` (named `name`), offering the new key at `identity`
    /// alone. `None`: that node is not in the plan, so the proof fails and
    /// the old key stays.
    Prove {
        target: Option<usize>,
        name: String,
        identity: String,
    },
    /// `certificates:`: the user CA made on the manager.
    CreateCa {
        path: String,
        comment: String,
    },
    /// `certificates:`: a certificate signed on the manager, written to
    /// this node (change `change`, a [`crate::plan::CertIssue`]).
    Issue {
        change: usize,
    },
    /// `certificates:`, on the manager: the certificate of `node` (its
    /// change `change` at plan index `of`) signed with the user CA.
    Sign {
        of: usize,
        change: usize,
        node: String,
        /// What is signed, its public key left empty (it comes from the
        /// plan, or from the key generated in this run).
        request: crate::node::SignRequest,
    },
    /// host_certificates: the host CA made on the manager.
    HostCa {
        path: String,
    },
    /// host_certificates: a host key signed on the manager, the
    /// certificate written on the node.
    HostCert {
        change: usize,
    },
    /// host_certificates: `sshd -t`, then sshd reloaded.
    Reload {
        change: usize,
    },
    /// host_certificates: the KRL made on the manager, written on the node.
    Krl {
        change: usize,
    },
    /// A rotation, once every proof holds: the old pair moved aside, the
    /// new one put in place.
    Swap {
        path: String,
        new_path: String,
        aside_path: String,
    },
}

impl Kind {
    /// Runs only when every action it depends on, on any node, succeeded
    /// (the steps of a rotation); other actions wait only for their own
    /// node's prerequisites.
    pub(super) fn strict(&self, change: Option<&Change>) -> bool {
        match self {
            Kind::Prove { .. }
            | Kind::Swap { .. }
            | Kind::Issue { .. }
            | Kind::Sign { .. }
            | Kind::HostCert { .. }
            | Kind::Krl { .. } => true,
            // A known_hosts edit drops a host's pinned keys only once that
            // host serves its certificate, and trusts the host CA only once
            // every serving host reloaded (host_certificates). One that only
            // adds pinned lines waits only for its own node.
            Kind::Edit { .. } => matches!(change, Some(Change::EditFile(e))
                if e.after_rotation_of.is_some()
                    || (e.file == crate::plan::FileRole::KnownHosts
                        && (!e.remove.is_empty()
                            || e.add.iter().any(|l| l.names.as_deref().is_some_and(is_ca_names))))),
            // A host certificate's drop-in or certificate removed: after
            // the peers' pins, and only if sshd took the drop-in's removal.
            Kind::Block { .. } => matches!(change, Some(Change::WriteBlock(b))
                if b.role == crate::plan::BlockRole::SshdDropin && b.new.is_none()),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    /// Index into `plan.nodes`.
    pub(super) plan_node: usize,
    pub(super) kind: Kind,
}

/// The action DAG of a plan.
pub struct ActionGraph {
    pub(super) graph: DiGraph<Action, ()>,
}

/// The graph as it is built: what later nodes' actions wait for.
#[derive(Default)]
struct Builder<'p> {
    graph: DiGraph<Action, ()>,
    /// Each node's key generation (a rotation's new key included).
    keygen_of: HashMap<&'p str, NodeIndex>,
    /// Edits that add keys generated in this run: (edit, their nodes).
    pending: Vec<(NodeIndex, Vec<String>)>,
    /// Rotations: node -> (plan index, new key path, swap action, the
    /// nodes the key opens).
    rotations: HashMap<&'p str, (usize, String, NodeIndex, &'p [String])>,
    /// Edits that wait for a rotation to be in place: (edit, node).
    after_rotation: Vec<(NodeIndex, &'p str)>,
    /// Certificates to write: (plan index, change, the write).
    issues: Vec<(usize, usize, NodeIndex)>,
    /// `--rotate-keys @ca`: the new CA's swap into place on the manager,
    /// and the edges its proofs try.
    ca_rotation: Option<(NodeIndex, &'p [(String, String)])>,
    /// host_certificates: the CA's generation, what it signs (certificates, KRLs),
    /// each node's sshd reload, and the known_hosts edits (edit, the
    /// nodes whose lines it removes, whether it adds the CA line).
    host_ca: Option<NodeIndex>,
    certs: Vec<NodeIndex>,
    reloads: HashMap<&'p str, NodeIndex>,
    known_hosts: Vec<(NodeIndex, Vec<&'p str>, bool)>,
    /// host_certificates turned off: each node's drop-in removal, and the
    /// known_hosts edits (edit, the nodes it pins, whether it drops the
    /// CA line) it waits for.
    stops: Vec<(&'p str, NodeIndex)>,
    pins: Vec<(NodeIndex, Vec<&'p str>, bool)>,
}

/// One node's own actions as they are added: what the ones after wait for.
#[derive(Default)]
struct NodeActions<'p> {
    mkdir: Option<NodeIndex>,
    /// Folders inside ~/.ssh made in this run, by path.
    subdirs: HashMap<&'p str, NodeIndex>,
    /// Blocks are written in plan order (a file before the Include that
    /// names it; the Include removed before the file).
    last_block: Option<NodeIndex>,
    edits: HashMap<&'p str, NodeIndex>,
    own: Vec<NodeIndex>,
    /// host_certificates: this node's certificate writes, and its reload.
    certs: Vec<NodeIndex>,
    reload: Option<NodeIndex>,
    /// Its drop-in is removed (host_certificates turned off).
    stops: bool,
    /// A rotation's leftover moved aside: before the new pair is made.
    moved: Option<NodeIndex>,
}

/// The aside of a [`Change::MoveAside`]'s swap: never made, since no
/// key is at its target.
pub(super) const UNUSED: &str = ".unused";

/// The action of a change (a rotation's swap is added apart).
fn kind_of(c: &Change, ci: usize) -> Kind {
    match c {
        Change::CreateDir { path, .. } => Kind::MkDir { path: path.clone() },
        Change::GenerateKey { path, key_type } => Kind::Keygen {
            path: path.clone(),
            key_type: key_type.clone(),
        },
        // The new key first; its swap is added by the caller.
        Change::RotateKey {
            new_path, key_type, ..
        } => Kind::Keygen {
            path: new_path.clone(),
            key_type: key_type.clone(),
        },
        Change::EditFile(_) => Kind::Edit { change: ci },
        Change::CreateUserCa { path, comment } => Kind::CreateCa {
            path: path.clone(),
            comment: comment.clone(),
        },
        Change::IssueCertificate(_) => Kind::Issue { change: ci },
        // The new CA first; its swap and proofs are added by the caller.
        Change::RotateUserCa {
            new_path, comment, ..
        } => Kind::CreateCa {
            path: new_path.clone(),
            comment: comment.clone(),
        },
        Change::WriteBlock(_) => Kind::Block { change: ci },
        Change::RemoveLeftover { path } => Kind::RemoveLeftover { path: path.clone() },
        // The swap script with no key at the aside: the pair (and its
        // certificate) renamed there, nothing else moved.
        Change::MoveAside {
            path, aside_path, ..
        } => Kind::Swap {
            path: aside_path.clone(),
            new_path: path.clone(),
            aside_path: format!("{aside_path}{UNUSED}"),
        },
        Change::SetAcl { path, command } => Kind::SetAcl {
            path: path.clone(),
            command: command.clone(),
        },
        Change::Mode { path, to, .. } => Kind::Mode {
            path: path.clone(),
            to: *to,
        },
        Change::Owner { path, to, .. } => Kind::Owner {
            path: path.clone(),
            to: *to,
        },
        Change::HostCa { path } => Kind::HostCa { path: path.clone() },
        Change::SignHostKey(_) => Kind::HostCert { change: ci },
        Change::ReloadSshd(_) => Kind::Reload { change: ci },
        Change::WriteKrl(_) => Kind::Krl { change: ci },
    }
}

impl<'p> Builder<'p> {
    /// The actions of one node, in plan order, and their order on it.
    fn node(&mut self, pi: usize, np: &'p crate::plan::NodePlan) {
        let mut n = NodeActions::default();
        for (ci, c) in np.changes.iter().enumerate() {
            let ix = self.graph.add_node(Action {
                plan_node: pi,
                kind: kind_of(c, ci),
            });
            self.change(pi, np, c, ix, &mut n);
            n.own.push(ix);
        }
        // The key's folder (made by the keygen when it is missing, as
        // a custom identity's may be) holds the other files there too.
        let key_dir = np.changes.iter().find_map(|c| match c {
            Change::GenerateKey { path, .. } => Some(parent(path)),
            _ => None,
        });
        let keygen = self.keygen_of.get(np.node.as_str()).copied();
        let graph = &mut self.graph;
        for &ix in &n.own {
            if let Some(m) = n.mkdir {
                if m != ix {
                    graph.add_edge(m, ix, ());
                }
            }
            if let (Some(k), Kind::Edit { change }) = (keygen, &graph[ix].kind) {
                if let Change::EditFile(e) = &np.changes[*change] {
                    if Some(parent(&e.path)) == key_dir {
                        graph.add_edge(k, ix, ());
                    }
                }
            }
            // A mode, owner or ACL fix comes after the edit of that file.
            let path = match &graph[ix].kind {
                Kind::Mode { path, .. } | Kind::Owner { path, .. } | Kind::SetAcl { path, .. } => {
                    Some(path.clone())
                }
                _ => None,
            };
            if let Some(e) = path.and_then(|p| n.edits.get(p.as_str()).copied()) {
                graph.add_edge(e, ix, ());
            }
        }
    }

    /// What the action `ix` of change `c` waits for on its node, and what
    /// it adds for the actions after it.
    fn change(
        &mut self,
        pi: usize,
        np: &'p crate::plan::NodePlan,
        c: &'p Change,
        ix: NodeIndex,
        n: &mut NodeActions<'p>,
    ) {
        let graph = &mut self.graph;
        match c {
            Change::CreateDir { path, .. } if path == "~/.ssh" => n.mkdir = Some(ix),
            Change::CreateDir { path, .. } => {
                n.subdirs.insert(path.as_str(), ix);
            }
            // Made with the CA, before the drop-ins that name it.
            Change::WriteKrl(_) => {
                n.last_block = Some(ix);
                self.certs.push(ix);
                self.after_reload(ix, n);
            }
            Change::WriteBlock(b) => {
                if let Some(&before) = n.edits.get(b.path.as_str()) {
                    graph.add_edge(before, ix, ());
                }
                if let Some(before) = n.last_block {
                    graph.add_edge(before, ix, ());
                }
                if let Some(&dir) = n.subdirs.get(parent(&b.path)) {
                    graph.add_edge(dir, ix, ());
                }
                n.last_block = Some(ix);
                n.edits.insert(b.path.as_str(), ix);
                self.stop_serving(np, b, ix, n);
            }
            Change::GenerateKey { .. } => {
                self.keygen_of.insert(np.node.as_str(), ix);
            }
            Change::CreateUserCa { .. } => {
                self.keygen_of.insert(crate::plan::CA_NODE, ix);
            }
            Change::MoveAside { .. } => n.moved = Some(ix),
            Change::RotateUserCa { .. } => self.ca_rotation(pi, c, ix, n),
            // Signed on the manager once the node's key and the CA exist
            // (see `signs`); written after ~/.ssh is made.
            Change::IssueCertificate(_) => {
                let ci = np.changes.iter().position(|x| std::ptr::eq(x, c));
                self.issues.push((pi, ci.unwrap_or_default(), ix));
            }
            Change::HostCa { .. } => {
                self.host_ca = Some(ix);
                self.keygen_of.insert(crate::plan::HOST_CA, ix);
            }
            Change::SignHostKey(_) => {
                n.certs.push(ix);
                self.certs.push(ix);
            }
            // Last on its node: after the certificates and the drop-in.
            Change::ReloadSshd(_) => {
                for &c in n.certs.iter().chain(&n.last_block) {
                    graph.add_edge(c, ix, ());
                }
                n.reload = Some(ix);
                if !n.stops {
                    self.reloads.insert(np.node.as_str(), ix);
                }
            }
            Change::RotateKey {
                path,
                new_path,
                aside_path,
                targets,
                ..
            } => {
                self.keygen_of.insert(np.node.as_str(), ix);
                if let Some(m) = n.moved {
                    graph.add_edge(m, ix, ());
                }
                let swap = graph.add_node(Action {
                    plan_node: pi,
                    kind: Kind::Swap {
                        path: path.clone(),
                        new_path: new_path.clone(),
                        aside_path: aside_path.clone(),
                    },
                });
                graph.add_edge(ix, swap, ());
                n.own.push(swap);
                self.rotations.insert(
                    np.node.as_str(),
                    (pi, new_path.clone(), swap, targets.as_slice()),
                );
            }
            Change::EditFile(e) => {
                // Two edits of one file run in plan order.
                if let Some(&before) = n.edits.get(e.path.as_str()) {
                    graph.add_edge(before, ix, ());
                }
                if let Some(node) = &e.after_rotation_of {
                    self.after_rotation.push((ix, node.as_str()));
                }
                n.edits.insert(e.path.as_str(), ix);
                if e.file == crate::plan::FileRole::KnownHosts {
                    self.known_hosts_edit(e, ix);
                }
                let needs: Vec<String> = e
                    .add
                    .iter()
                    .filter(|l| l.base64.is_none())
                    .map(|l| l.node.to_string())
                    .collect();
                if !needs.is_empty() {
                    self.pending.push((ix, needs));
                }
            }
            _ => {}
        }
    }

    /// Each certificate is signed on the manager (`manager`: its plan
    /// index) after the node's key generation and the CA's, when made in
    /// this run, and written after its signing.
    fn signs(&mut self, plan: &Plan, manager: usize) {
        for (pi, ci, write) in std::mem::take(&mut self.issues) {
            let node = plan.nodes[pi].node.clone();
            let Some(Change::IssueCertificate(i)) = plan.nodes[pi].changes.get(ci) else {
                continue;
            };
            let request = crate::node::SignRequest {
                ca: crate::node::NodePath::plan(&i.ca),
                agent: i.agent.as_deref().map(crate::node::NodePath::plan),
                key_id: i.key_id.clone(),
                principals: i.principals.clone(),
                validity: i.validity,
                serial: i.serial,
                public_key: String::new(),
            };
            let sign = self.graph.add_node(Action {
                plan_node: manager,
                kind: Kind::Sign {
                    of: pi,
                    change: ci,
                    node: node.clone(),
                    request,
                },
            });
            for k in [node.as_str(), crate::plan::CA_NODE] {
                if let Some(&k) = self.keygen_of.get(k) {
                    self.graph.add_edge(k, sign, ());
                }
            }
            self.graph.add_edge(sign, write, ());
        }
    }

    /// A rotated key is proven on every node it opens, after the edit
    /// that authorizes it there, before it is put in place; a node with
    /// no such edit still gets its proof, which then fails and keeps the
    /// old key.
    fn proofs(&mut self, plan: &Plan) {
        let plan_index = certificates::plan_index(plan);
        for (node, (pi, new_path, swap, targets)) in &self.rotations {
            for t in targets.iter() {
                let target = plan_index.get(t.as_str()).copied();
                let prove = self.graph.add_node(Action {
                    plan_node: *pi,
                    kind: Kind::Prove {
                        target,
                        name: t.clone(),
                        identity: new_path.clone(),
                    },
                });
                self.graph.add_edge(self.keygen_of[node], prove, ());
                for (ix, needs) in &self.pending {
                    if Some(self.graph[*ix].plan_node) == target && needs.iter().any(|n| n == node)
                    {
                        self.graph.add_edge(*ix, prove, ());
                    }
                }
                self.graph.add_edge(prove, *swap, ());
            }
        }
    }
}

impl ActionGraph {
    pub fn build(plan: &Plan) -> ActionGraph {
        let mut b = Builder::default();
        for (pi, np) in plan.nodes.iter().enumerate() {
            if matches!(np.status, NodeStatus::Planned) {
                b.node(pi, np);
            }
        }
        for (ix, needs) in &b.pending {
            for n in needs {
                if let Some(&k) = b.keygen_of.get(n.as_str()) {
                    b.graph.add_edge(k, *ix, ());
                }
            }
        }
        b.proofs(plan);
        b.certificate_proofs(plan);
        // The manager's plan is the one of a local node.
        if let Some(m) = plan.nodes.iter().position(|n| n.target == "local") {
            b.signs(plan, m);
        }
        b.host_certificates();
        for (ix, n) in std::mem::take(&mut b.after_rotation) {
            if let Some((_, _, swap, _)) = b.rotations.get(n) {
                b.graph.add_edge(*swap, ix, ());
            }
        }
        ActionGraph { graph: b.graph }
    }

    /// Waves of actions: each wave depends only on earlier ones.
    #[cfg(test)]
    pub(super) fn waves(&self) -> Vec<Vec<NodeIndex>> {
        let mut indeg: Vec<usize> = self
            .graph
            .node_indices()
            .map(|i| {
                self.graph
                    .neighbors_directed(i, petgraph::Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|i| indeg[i.index()] == 0)
            .collect();
        let mut waves = Vec::new();
        while !ready.is_empty() {
            let mut next = Vec::new();
            for &i in &ready {
                for j in self
                    .graph
                    .neighbors_directed(i, petgraph::Direction::Outgoing)
                {
                    indeg[j.index()] -= 1;
                    if indeg[j.index()] == 0 {
                        next.push(j);
                    }
                }
            }
            waves.push(std::mem::take(&mut ready));
            ready = next;
        }
        waves
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }
}

/// The folder of a plan path (`~/keys/id` -> `~/keys`).
pub(super) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}
