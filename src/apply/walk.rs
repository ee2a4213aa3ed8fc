//! The executor: a walk over the action graph by units ([`Units`]), each
//! unit started as soon as every unit it waits for is done, bounded by
//! `--concurrency` (terraform's walk, not waves): a node's key generation
//! is one round trip, and the rest of its actions go in as few more as
//! the graph allows ([`Door::run_all`]: its writes and their read-back),
//! as soon as the keys they carry exist; one slow node holds only what
//! waits for it.
//!
//! A node's read-back is the one its last batch (its main unit) answered,
//! and one rule says when it stands: only when nothing else of that node
//! ended once that batch was sent (after it, or alongside it: a
//! rotation's proof or swap, an ACL, an sshd reload, a retired key's
//! removal, each of them its own unit). What ended before the batch was
//! sent is in what it read. Else the read-back is dropped and the node is
//! read again (`ops::apply`'s `settle`). A signing on the manager writes
//! nothing of its account (only in a private temporary folder).

use std::collections::VecDeque;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use super::units::Unit;
use super::*;
use crate::node::{DoorError, Outcomes, Queued};

/// An action as it was sent: its index, its words, and the text it writes
/// (remembered once written).
struct Sent {
    ix: NodeIndex,
    what: String,
    text: Option<((usize, String), String)>,
}

/// What a unit's round trip answered.
enum Answer {
    One(Result<Outcome, DoorError>),
    List(Outcomes),
}

/// A unit on its way: the unit, what was sent, and the answer.
type InFlight<'a> = BoxFuture<'a, (usize, Vec<Sent>, Answer)>;

/// Carry out `plan` by walking its action graph; see [`super::apply_on`].
pub(super) async fn walk(
    inv: &Inventory,
    graph: &crate::model::graph::TrustGraph,
    plan: &Plan,
    doors: &[Option<&dyn Door>],
    opts: &ApplyOptions,
) -> ApplyRun {
    let ag = ActionGraph::build(plan);
    let units = ag.units(plan);
    let mut w = Walker {
        inv,
        plan,
        ag: &ag,
        graph,
        doors,
        opts,
        run: Run {
            results: vec![None; ag.len()],
            generated: HashMap::new(),
            written: HashMap::new(),
        },
        read_back: vec![None; inv.nodes.len()],
        batch_sent: vec![false; inv.nodes.len()],
        stale: vec![false; inv.nodes.len()],
    };
    let mut waiting: Vec<usize> = units.after.iter().map(Vec::len).collect();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); units.units.len()];
    for (u, froms) in units.after.iter().enumerate() {
        for &f in froms {
            next[f].push(u);
        }
    }
    let mut ready: VecDeque<usize> = (0..units.units.len())
        .filter(|&u| waiting[u] == 0)
        .collect();
    let mut in_flight: FuturesUnordered<InFlight<'_>> = FuturesUnordered::new();
    let mut pause = Pause::from_env();
    // Units started so far (a `unitN` pause counts them).
    let mut started = 0;
    let limit = opts.concurrency.max(1);
    loop {
        let steps = |ready: &VecDeque<usize>| {
            let ag = &ag;
            let units = &units;
            ready
                .iter()
                .flat_map(move |&u| units.units[u].actions.iter())
                .map(move |ix| Step::of(plan, &ag.graph[*ix]))
                .collect::<Vec<_>>()
        };
        // A rotation's pause comes before the first of its steps, with
        // nothing else running, as between two waves.
        let mut hold = false;
        if let Some(p) = pause.as_mut() {
            if !ready.is_empty() && p.holds(steps(&ready).into_iter(), started) {
                if in_flight.is_empty() {
                    p.before(steps(&ready).into_iter(), started).await;
                } else {
                    hold = true;
                }
            }
        }
        let mut finished = Vec::new();
        while !hold && in_flight.len() < limit {
            // A `unitN` pause may come due within this round of starts.
            if let Some(p) = pause.as_ref() {
                if !ready.is_empty() && p.holds(steps(&ready).into_iter(), started) {
                    break;
                }
            }
            let Some(u) = ready.pop_front() else { break };
            started += 1;
            match w.launch(u, &units.units[u]) {
                Some(fut) => in_flight.push(fut),
                None => finished.push(u),
            }
        }
        if finished.is_empty() {
            let Some((u, sent, answer)) = in_flight.next().await else {
                break;
            };
            w.record(&units.units[u], sent, answer);
            finished.push(u);
        }
        for u in finished {
            for &n in &next[u] {
                waiting[n] -= 1;
                if waiting[n] == 0 {
                    ready.push_back(n);
                }
            }
        }
    }
    let Walker {
        run,
        mut read_back,
        stale,
        ..
    } = w;
    for (id, stale) in stale.into_iter().enumerate() {
        if stale {
            read_back[id] = None;
        }
    }
    ApplyRun {
        report: report(plan, &ag, &run.results),
        read_back,
    }
}

/// The walk's state.
struct Walker<'a> {
    inv: &'a Inventory,
    plan: &'a Plan,
    ag: &'a ActionGraph,
    graph: &'a crate::model::graph::TrustGraph,
    doors: &'a [Option<&'a dyn Door>],
    opts: &'a ApplyOptions,
    run: Run,
    /// By inventory node: what its main unit read back.
    read_back: Vec<Option<LiveAccount>>,
    /// By inventory node: its main unit was sent.
    batch_sent: Vec<bool>,
    /// By inventory node: something else of it ended once its main unit
    /// was sent, so that unit's read-back is not its state after the run.
    stale: Vec<bool>,
}

impl<'a> Walker<'a> {
    fn door_of(&self, pi: usize) -> Option<(usize, &'a dyn Door)> {
        let id = self.inv.find(&self.plan.nodes[pi].node)?;
        Some((id, (*self.doors.get(id)?)?))
    }

    /// Start unit `u`: each action skipped, failed before it is sent, or
    /// put in the unit's list; `None` when nothing is left to send.
    fn launch(&mut self, u: usize, unit: &Unit) -> Option<InFlight<'a>> {
        let (plan, ag) = (self.plan, self.ag);
        let door = self.door_of(unit.plan_node);
        let marker = self.inv.marker(&plan.nodes[unit.plan_node].node);
        // What this list writes, for a second edit of the same file in it.
        let mut overlay: HashMap<(usize, String), String> = HashMap::new();
        let mut sent: Vec<Sent> = Vec::new();
        let mut list: Vec<Queued> = Vec::new();
        for &ix in &unit.actions {
            let action = &ag.graph[ix];
            let what = describe(plan, action);
            if let Some(skipped) = blocked(ag, plan, &self.run.results, ix, &what) {
                self.run.results[ix.index()] = Some(skipped);
                continue;
            }
            let Some(_) = door else {
                self.run.results[ix.index()] = Some(ActionResult::Skipped {
                    what,
                    because: "no connection to this node".into(),
                });
                continue;
            };
            let input = edit_input(plan, action, &self.run, &overlay);
            let what = match &input {
                Some(e) if !e.missing.is_empty() => format!(
                    "{what}, without the keys of {} (not generated)",
                    e.missing.join(", ")
                ),
                _ => what,
            };
            let proof = match &action.kind {
                Kind::Prove {
                    target, identity, ..
                } => {
                    let p = target.ok_or(rotation::ProofError::NotInPlan).and_then(|t| {
                        proof(self.inv, self.graph, plan, action, t, identity, self.opts)
                    });
                    match p {
                        Ok(p) => Some(p),
                        Err(e) => {
                            self.run.results[ix.index()] = Some(ActionResult::Failed {
                                what,
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    }
                }
                _ => None,
            };
            // A signing's input is the public key it signs, not a file's
            // text.
            let text = input
                .as_ref()
                .filter(|e| !e.remove && !matches!(action.kind, Kind::Sign { .. }))
                .and_then(|e| Some((e.key.clone(), e.content.clone().ok()?)));
            // An action that cannot be put into words for its door fails
            // like a refusal.
            let prepared = super::host_certificates::prepared_op(plan, action);
            let op = match op_of(action, &marker, input, proof, prepared) {
                Ok(op) => op,
                Err(e) => {
                    self.run.results[ix.index()] = Some(ActionResult::Failed {
                        what,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if let Some((key, t)) = &text {
                overlay.insert(key.clone(), t.clone());
            }
            // The same node's actions of this list it waits for.
            let after = ag
                .graph
                .neighbors_directed(ix, Direction::Incoming)
                .filter_map(|d| sent.iter().position(|s| s.ix == d))
                .collect();
            list.push(Queued { op, after });
            sent.push(Sent { ix, what, text });
        }
        let (id, door) = door?;
        if list.is_empty() {
            return None;
        }
        let files = NodeFiles::of(self.inv, id);
        let main = unit.main;
        if main {
            self.batch_sent[id] = true;
        }
        Some(Box::pin(async move {
            let answer = if main || list.len() > 1 {
                Answer::List(door.run_all(&list, &files).await)
            } else {
                Answer::One(door.run(&list[0].op).await)
            };
            (u, sent, answer)
        }))
    }

    /// Record what a unit's round trip answered.
    fn record(&mut self, unit: &Unit, sent: Vec<Sent>, answer: Answer) {
        // The module's rule: anything else of a node that ends once its
        // main unit was sent makes that unit's read-back stale.
        let signing = unit
            .actions
            .iter()
            .all(|ix| matches!(self.ag.graph[*ix].kind, Kind::Sign { .. }));
        if let Some((id, _)) = self.door_of(unit.plan_node) {
            if !unit.main && !signing && self.batch_sent[id] {
                self.stale[id] = true;
            }
        }
        let answers = match answer {
            Answer::One(r) => vec![Some(r)],
            Answer::List(out) => {
                if let (true, Ok(state), Some((id, _))) =
                    (unit.main, out.state, self.door_of(unit.plan_node))
                {
                    self.read_back[id] = Some(state);
                }
                out.results
            }
        };
        // A door answers every action of its list; one that did not is
        // failed, not lost.
        let missing = || Some(Ok(Outcome::Failed("the node gave no answer for it".into())));
        let answers = answers.into_iter().chain(std::iter::repeat_with(missing));
        for (s, answer) in sent.into_iter().zip(answers) {
            let r = match answer {
                Some(r) => r.unwrap_or_else(|e| Outcome::Failed(e.finding.reason.to_string())),
                None => {
                    let skipped = blocked(self.ag, self.plan, &self.run.results, s.ix, &s.what)
                        .unwrap_or_else(|| ActionResult::Skipped {
                            what: s.what.clone(),
                            because: "an action it waits for did not succeed".into(),
                        });
                    self.run.results[s.ix.index()] = Some(skipped);
                    continue;
                }
            };
            if let (Outcome::Ok, Some((key, text))) = (&r, s.text) {
                self.run.written.insert(key, text);
            }
            let node = actions::result_name(self.plan, &self.ag.graph[s.ix]);
            self.run.results[s.ix.index()] =
                Some(result_of(&node, s.what, r, &mut self.run.generated));
        }
    }
}
