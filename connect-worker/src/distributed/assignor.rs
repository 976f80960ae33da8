//! The leader's incremental cooperative assignment (KIP-415, Kafka's
//! `IncrementalCooperativeAssignor`), as a pure function of what the members report.
//!
//! Eager rebalancing stops every connector and task in the group whenever a worker comes or
//! goes; this assignor moves only what must move:
//!
//! - work a member still runs stays with it (if two members report the same work, the one
//!   first by member id keeps it and the others have it revoked);
//! - work whose connector was deleted (or whose task no longer exists) is revoked;
//! - work of a worker that left is *lost*: it waits up to `scheduled.rebalance.max.delay.ms`
//!   for the worker to come back (a member that joins owning nothing receives it at once), and
//!   is spread over everyone when the delay runs out; with a delay of 0 it moves at once;
//! - new and freed work goes to the least loaded members; connectors and tasks are balanced
//!   separately, as in Kafka;
//! - when members are unbalanced (a worker joined), the overloaded ones have their excess
//!   *revoked* and nothing else; they stop it and rejoin, and the follow-up rebalance hands the
//!   freed work to the new members. Revocations are never made two rounds in a row, so a group
//!   cannot ping-pong; a round that is unbalanced but may not revoke schedules a follow-up
//!   rebalance after [`FOLLOW_UP_REBALANCE_MS`] (Kafka backs off likewise).
//!
//! The leader remembers the previous round in [`LeaderState`], as Kafka's assignor does, to tell
//! lost work (owned last round by a member that is gone) from new work.

use std::collections::{BTreeMap, BTreeSet};

use super::protocol::{ConnectorTasks, CONNECTOR_TASK};

/// The delay of the follow-up rebalance scheduled when the group is unbalanced in a round that
/// may not revoke (the previous one did), so a second joiner in a row still gets its share.
pub const FOLLOW_UP_REBALANCE_MS: i64 = 1_000;

/// One unit of work: a connector instance (`task == CONNECTOR_TASK`) or one of its tasks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Work {
    pub connector: String,
    pub task: i32,
}

impl Work {
    pub fn connector(name: &str) -> Self {
        Work {
            connector: name.to_string(),
            task: CONNECTOR_TASK,
        }
    }

    pub fn task(name: &str, task: i32) -> Self {
        Work {
            connector: name.to_string(),
            task,
        }
    }

    fn is_connector(&self) -> bool {
        self.task == CONNECTOR_TASK
    }
}

/// Work as the wire format groups it.
pub fn to_connector_tasks(work: &BTreeSet<Work>) -> ConnectorTasks {
    let mut out = ConnectorTasks::new();
    for w in work {
        out.entry(w.connector.clone()).or_default().push(w.task);
    }
    out
}

pub fn from_connector_tasks(tasks: &ConnectorTasks) -> BTreeSet<Work> {
    tasks
        .iter()
        .flat_map(|(c, ids)| ids.iter().map(move |t| Work::task(c, *t)))
        .collect()
}

/// What the leader keeps between rebalances.
#[derive(Debug, Clone, Default)]
pub struct LeaderState {
    /// Each member's work after the previous round.
    previous: BTreeMap<String, BTreeSet<Work>>,
    /// When lost work is handed out if its worker has not come back (ms since the epoch).
    deadline_ms: Option<i64>,
    /// Lost work still waiting for its worker (or the deadline).
    waiting: BTreeSet<Work>,
    /// Whether the previous round revoked work to rebalance.
    revoked_last_round: bool,
}

/// One member's part of a round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPlan {
    /// Work newly given to the member.
    pub assigned: BTreeSet<Work>,
    /// Work the member must stop.
    pub revoked: BTreeSet<Work>,
    /// Milliseconds until the rebalance the leader has scheduled for lost work, 0 if none.
    pub delay_ms: i32,
}

/// Computes a round. `members` maps member ids to the work each reports running;
/// `configured` is every connector and task in the config snapshot the leader read; `now_ms`
/// is the wall clock and `max_delay_ms` Kafka's `scheduled.rebalance.max.delay.ms`.
pub fn assign(
    state: &mut LeaderState,
    members: &BTreeMap<String, BTreeSet<Work>>,
    configured: &BTreeSet<Work>,
    now_ms: i64,
    max_delay_ms: i64,
) -> BTreeMap<String, MemberPlan> {
    let mut plans: BTreeMap<String, MemberPlan> = members
        .keys()
        .map(|m| (m.clone(), MemberPlan::default()))
        .collect();
    if members.is_empty() {
        *state = LeaderState::default();
        return plans;
    }

    // What each member keeps: configured work it runs, once in the group.
    let mut keeps: BTreeMap<String, BTreeSet<Work>> = BTreeMap::new();
    let mut active: BTreeSet<Work> = BTreeSet::new();
    for (member, owned) in members {
        let kept = keeps.entry(member.clone()).or_default();
        for w in owned {
            if configured.contains(w) && active.insert(w.clone()) {
                kept.insert(w.clone());
            } else {
                revoke(&mut plans, member, w);
            }
        }
    }

    // Lost: owned last round by members that are gone, still configured and not run by anyone.
    let lost: BTreeSet<Work> = state
        .previous
        .iter()
        .filter(|(m, _)| !members.contains_key(*m))
        .flat_map(|(_, work)| work.iter())
        .chain(state.waiting.iter())
        .filter(|w| configured.contains(*w) && !active.contains(*w))
        .cloned()
        .collect();
    let mut unassigned: BTreeSet<Work> = configured
        .iter()
        .filter(|w| !active.contains(*w) && !lost.contains(*w))
        .cloned()
        .collect();

    let mut delay_ms = 0i64;
    let mut lost_to: Option<BTreeSet<String>> = None;
    if lost.is_empty() {
        state.deadline_ms = None;
    } else if max_delay_ms <= 0 || state.deadline_ms.is_some_and(|d| now_ms >= d) {
        state.deadline_ms = None;
        unassigned.extend(lost.iter().cloned());
    } else {
        // Members that joined owning nothing and were not in the last round: a returning
        // (or replacement) worker takes the lost work now.
        let newcomers: BTreeSet<String> = members
            .iter()
            .filter(|(m, owned)| owned.is_empty() && !state.previous.contains_key(*m))
            .map(|(m, _)| m.clone())
            .collect();
        if newcomers.is_empty() {
            let deadline = *state.deadline_ms.get_or_insert(now_ms + max_delay_ms);
            delay_ms = (deadline - now_ms).max(0);
        } else {
            state.deadline_ms = None;
            lost_to = Some(newcomers);
        }
    }

    // Balance connectors and tasks separately. Revoke only when nothing was revoked last round
    // and no lost work is waiting for its worker.
    let may_revoke = !state.revoked_last_round && delay_ms == 0;
    let mut revoked_any = false;
    let mut follow_up = false;
    for connectors in [true, false] {
        let kind = |w: &Work| w.is_connector() == connectors;
        let mut new_work: Vec<Work> = unassigned.iter().filter(|w| kind(w)).cloned().collect();
        let lost_work: Vec<Work> = if lost_to.is_some() {
            lost.iter().filter(|w| kind(w)).cloned().collect()
        } else {
            Vec::new()
        };
        let mut load: BTreeMap<String, usize> = keeps
            .iter()
            .map(|(m, k)| (m.clone(), k.iter().filter(|w| kind(w)).count()))
            .collect();

        // Lost work goes to the newcomers first.
        if let Some(newcomers) = &lost_to {
            for w in lost_work {
                let target = least_loaded(&load, Some(newcomers));
                give(&mut plans, &mut keeps, &mut load, &target, w);
            }
        }

        if may_revoke {
            let total: usize = load.values().sum::<usize>() + new_work.len();
            for (member, excess) in excess_per_member(&load, total) {
                let victims: Vec<Work> = keeps
                    .get(&member)
                    .map(|k| {
                        k.iter()
                            .filter(|w| kind(w))
                            .rev()
                            .take(excess)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                for w in victims {
                    if let Some(k) = keeps.get_mut(&member) {
                        k.remove(&w);
                    }
                    if let Some(l) = load.get_mut(&member) {
                        *l -= 1;
                    }
                    revoke(&mut plans, &member, &w);
                    revoked_any = true;
                }
            }
        }

        for w in new_work.drain(..) {
            let target = least_loaded(&load, None);
            give(&mut plans, &mut keeps, &mut load, &target, w);
        }

        // Unbalanced but not allowed to revoke because the last round did: come back soon.
        if !may_revoke && delay_ms == 0 && !excess_per_member(&load, load.values().sum()).is_empty()
        {
            follow_up = true;
        }
    }
    state.revoked_last_round = revoked_any;

    let scheduled = if delay_ms > 0 {
        delay_ms
    } else if follow_up {
        FOLLOW_UP_REBALANCE_MS
    } else {
        0
    };
    let delay = i32::try_from(scheduled).unwrap_or(i32::MAX);
    for plan in plans.values_mut() {
        plan.delay_ms = delay;
    }
    state.previous = keeps;
    // Lost work still waiting is remembered apart, its owners being gone from `previous`.
    state.waiting = if delay_ms > 0 { lost } else { BTreeSet::new() };
    plans
}

fn revoke(plans: &mut BTreeMap<String, MemberPlan>, member: &str, w: &Work) {
    if let Some(p) = plans.get_mut(member) {
        p.revoked.insert(w.clone());
    }
}

fn give(
    plans: &mut BTreeMap<String, MemberPlan>,
    keeps: &mut BTreeMap<String, BTreeSet<Work>>,
    load: &mut BTreeMap<String, usize>,
    member: &str,
    w: Work,
) {
    if let Some(p) = plans.get_mut(member) {
        p.assigned.insert(w.clone());
    }
    keeps.entry(member.to_string()).or_default().insert(w);
    *load.entry(member.to_string()).or_default() += 1;
}

/// The member with the least load (first by id on ties), among `among` when given.
fn least_loaded(load: &BTreeMap<String, usize>, among: Option<&BTreeSet<String>>) -> String {
    load.iter()
        .filter(|(m, _)| among.is_none_or(|a| a.contains(*m)))
        .min_by_key(|(m, l)| (**l, (*m).clone()))
        .map(|(m, _)| m.clone())
        .unwrap_or_default()
}

/// How much each member holds above its fair share of `total`: the most loaded members may keep
/// `ceil(total / n)`, as many as `total % n` allows, the others `floor(total / n)`.
fn excess_per_member(load: &BTreeMap<String, usize>, total: usize) -> Vec<(String, usize)> {
    let n = load.len();
    if n == 0 {
        return Vec::new();
    }
    let floor = total / n;
    let mut ceil_slots = total % n;
    let mut by_load: Vec<(&String, &usize)> = load.iter().collect();
    by_load.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut out = Vec::new();
    for (member, l) in by_load {
        let share = if ceil_slots > 0 && *l > floor {
            ceil_slots -= 1;
            floor + 1
        } else {
            floor
        };
        if *l > share {
            out.push((member.clone(), *l - share));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: i64 = 300_000;

    /// `n` connectors with `tasks` tasks each.
    fn configured(n: usize, tasks: i32) -> BTreeSet<Work> {
        let mut out = BTreeSet::new();
        for c in 0..n {
            let name = format!("c{c}");
            out.insert(Work::connector(&name));
            for t in 0..tasks {
                out.insert(Work::task(&name, t));
            }
        }
        out
    }

    /// Runs rounds as the group would: members apply their plans and rejoin, until a round
    /// revokes and assigns nothing. Returns what each member runs and every plan of each round.
    fn settle(
        state: &mut LeaderState,
        running: &mut BTreeMap<String, BTreeSet<Work>>,
        configured: &BTreeSet<Work>,
        now_ms: i64,
        max_delay_ms: i64,
    ) -> Vec<BTreeMap<String, MemberPlan>> {
        let mut rounds = Vec::new();
        for _ in 0..10 {
            let plans = assign(state, running, configured, now_ms, max_delay_ms);
            let quiet = plans
                .values()
                .all(|p| p.assigned.is_empty() && p.revoked.is_empty());
            for (m, p) in &plans {
                let r = running.entry(m.clone()).or_default();
                for w in &p.revoked {
                    r.remove(w);
                }
                r.extend(p.assigned.iter().cloned());
            }
            rounds.push(plans);
            if quiet {
                return rounds;
            }
        }
        panic!("the group did not settle in 10 rounds");
    }

    fn members(ids: &[&str]) -> BTreeMap<String, BTreeSet<Work>> {
        ids.iter()
            .map(|m| (m.to_string(), BTreeSet::new()))
            .collect()
    }

    fn assert_exactly_once(
        running: &BTreeMap<String, BTreeSet<Work>>,
        configured: &BTreeSet<Work>,
    ) {
        let mut seen = BTreeSet::new();
        for work in running.values() {
            for w in work {
                assert!(seen.insert(w.clone()), "{w:?} runs twice");
            }
        }
        assert_eq!(&seen, configured);
    }

    fn counts(running: &BTreeMap<String, BTreeSet<Work>>, connectors: bool) -> Vec<usize> {
        running
            .values()
            .map(|w| w.iter().filter(|w| w.is_connector() == connectors).count())
            .collect()
    }

    fn balanced(v: &[usize]) -> bool {
        v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0) <= 1
    }

    #[test]
    fn first_round_spreads_connectors_and_tasks() {
        let conf = configured(3, 4);
        let mut state = LeaderState::default();
        let mut running = members(&["w1", "w2", "w3"]);
        let rounds = settle(&mut state, &mut running, &conf, 0, DELAY);
        assert_eq!(rounds.len(), 2, "one assigning round, one quiet");
        assert_exactly_once(&running, &conf);
        assert_eq!(counts(&running, true), vec![1, 1, 1]);
        assert_eq!(counts(&running, false), vec![4, 4, 4]);
    }

    #[test]
    fn joining_worker_moves_only_what_it_receives() {
        let conf = configured(2, 6);
        let mut state = LeaderState::default();
        let mut running = members(&["w1", "w2", "w3"]);
        settle(&mut state, &mut running, &conf, 0, DELAY);
        let before = running.clone();

        running.insert("w4".into(), BTreeSet::new());
        let rounds = settle(&mut state, &mut running, &conf, 1, DELAY);
        assert_exactly_once(&running, &conf);
        assert!(balanced(&counts(&running, false)));
        assert!(balanced(&counts(&running, true)));
        // Everything revoked went to the new worker, and nothing else moved.
        let revoked: BTreeSet<Work> = rounds
            .iter()
            .flat_map(|r| r.values().flat_map(|p| p.revoked.iter().cloned()))
            .collect();
        assert_eq!(revoked, running["w4"]);
        for m in ["w1", "w2", "w3"] {
            assert!(running[m].is_subset(&before[m]), "{m} received work");
            assert!(rounds.iter().all(|r| r[m].assigned.is_empty()));
        }
    }

    #[test]
    fn lost_work_moves_at_once_with_no_delay() {
        let conf = configured(2, 3);
        let mut state = LeaderState::default();
        let mut running = members(&["w1", "w2", "w3"]);
        settle(&mut state, &mut running, &conf, 0, 0);
        let kept_w1 = running["w1"].clone();
        running.remove("w2");
        let rounds = settle(&mut state, &mut running, &conf, 10, 0);
        assert_exactly_once(&running, &conf);
        assert!(running["w1"].is_superset(&kept_w1));
        assert!(rounds
            .iter()
            .all(|r| r.values().all(|p| p.revoked.is_empty())));
    }

    #[test]
    fn lost_work_waits_for_the_delay_then_moves() {
        let conf = configured(1, 4);
        let mut state = LeaderState::default();
        let mut running = members(&["w1", "w2"]);
        settle(&mut state, &mut running, &conf, 0, DELAY);
        let lost = running.remove("w2").unwrap_or_default();
        assert!(!lost.is_empty());

        let plans = assign(&mut state, &running, &conf, 1_000, DELAY);
        assert!(plans["w1"].assigned.is_empty());
        assert_eq!(plans["w1"].delay_ms, DELAY as i32);
        // A later round before the deadline keeps the same deadline.
        let plans = assign(&mut state, &running, &conf, 101_000, DELAY);
        assert!(plans["w1"].assigned.is_empty());
        assert_eq!(plans["w1"].delay_ms, (DELAY - 100_000) as i32);
        // At the deadline the lost work moves.
        let plans = assign(&mut state, &running, &conf, 1_000 + DELAY, DELAY);
        assert_eq!(plans["w1"].assigned, lost);
        assert_eq!(plans["w1"].delay_ms, 0);
    }

    #[test]
    fn a_returning_worker_takes_its_lost_work_back_before_the_delay() {
        let conf = configured(2, 2);
        let mut state = LeaderState::default();
        let mut running = members(&["w1", "w2"]);
        settle(&mut state, &mut running, &conf, 0, DELAY);
        let lost = running.remove("w2").unwrap_or_default();
        assign(&mut state, &running, &conf, 1_000, DELAY);
        // w2 restarts with a new member id and nothing running.
        running.insert("w2b".into(), BTreeSet::new());
        let plans = assign(&mut state, &running, &conf, 2_000, DELAY);
        assert_eq!(plans["w2b"].assigned, lost);
        assert!(plans["w1"].assigned.is_empty() && plans["w1"].revoked.is_empty());
        assert_eq!(plans["w2b"].delay_ms, 0);
    }

    #[test]
    fn deleted_and_duplicated_work_is_revoked() {
        let conf = configured(1, 2);
        let mut state = LeaderState::default();
        let mut running = BTreeMap::new();
        running.insert(
            "a".to_string(),
            [Work::task("c0", 0), Work::task("gone", 0)].into(),
        );
        running.insert("b".to_string(), [Work::task("c0", 0)].into());
        let plans = assign(&mut state, &running, &conf, 0, DELAY);
        assert_eq!(plans["a"].revoked, [Work::task("gone", 0)].into());
        assert_eq!(plans["b"].revoked, [Work::task("c0", 0)].into());
        let rounds = settle(&mut state, &mut running, &conf, 0, DELAY);
        assert!(rounds.len() <= 3);
        assert_exactly_once(&running, &conf);
    }

    #[test]
    fn a_second_joiner_in_a_row_gets_its_share_in_a_follow_up() {
        let conf = configured(1, 12);
        let mut state = LeaderState::default();
        let mut running = members(&["w1", "w2"]);
        settle(&mut state, &mut running, &conf, 0, 0);
        // w3 joins: the round revokes w3's share from w1 and w2.
        running.insert("w3".into(), BTreeSet::new());
        let plans = assign(&mut state, &running, &conf, 1, 0);
        assert!(plans.values().any(|p| !p.revoked.is_empty()));
        for (m, p) in &plans {
            let r = running.entry(m.clone()).or_default();
            for w in &p.revoked {
                r.remove(w);
            }
        }
        // w4 joins before the follow-up: this round may not revoke, so it hands out the freed
        // work and schedules a follow-up.
        running.insert("w4".into(), BTreeSet::new());
        let plans = assign(&mut state, &running, &conf, 2, 0);
        assert!(plans.values().all(|p| p.revoked.is_empty()));
        assert!(plans
            .values()
            .all(|p| p.delay_ms == FOLLOW_UP_REBALANCE_MS as i32));
        for (m, p) in &plans {
            running
                .entry(m.clone())
                .or_default()
                .extend(p.assigned.iter().cloned());
        }
        // The follow-up balances everyone.
        settle(&mut state, &mut running, &conf, 3, 0);
        assert_exactly_once(&running, &conf);
        assert!(
            balanced(&counts(&running, false)),
            "{:?}",
            counts(&running, false)
        );
    }

    #[test]
    fn wire_grouping_round_trips() {
        let work = configured(2, 2);
        assert_eq!(from_connector_tasks(&to_connector_tasks(&work)), work);
    }
}
