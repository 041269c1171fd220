//! The demo log: one stream of sessions per user, each with its own generator, merged in time
//! order so that log ids grow with time as in a real Moodle. Memory stays at a few sessions per
//! user whatever `log_rows` is. `plan` is the dry run that finds where the log starts and ends
//! and what each user did, which the user rows and the time shift need before any log row is
//! written.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::events::{
    ASSIGN_GRADED, ASSIGN_GRADING_TABLE, ASSIGN_STATUS, ASSIGN_SUBMITTED, CM_UPDATED,
    COMPLETION_UPDATED, CONFIG_LOG, COURSE_UPDATED, COURSE_VIEW, DASHBOARD, FORUM_DISCUSSION,
    FORUM_POST, GRADE_REPORT, LOGIN, LOGIN_FAILED, LOGOUT, Mod, QUIZ_ATTEMPT_VIEW, QUIZ_STARTED,
    QUIZ_SUBMITTED, Tpl, USER_GRADED, USER_UPDATED,
};
use super::rng::Rng;
use super::site::{DemoCm, DemoCourse, DemoUser, Role, Site};
use super::{DAY, DemoOptions, HOUR, MINUTE};
use crate::store::source::{CONTEXT_COURSE, CONTEXT_MODULE, CONTEXT_SYSTEM, CONTEXT_USER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Web,
    Ws,
    Cli,
    Null,
}

#[derive(Clone, Copy)]
pub(super) struct Ev {
    pub(super) time: i64,
    pub(super) user: usize,
    pub(super) tpl: &'static Tpl,
    pub(super) contextid: i64,
    pub(super) contextlevel: i64,
    pub(super) contextinstanceid: i64,
    pub(super) courseid: i64,
    pub(super) objectid: Option<i64>,
    pub(super) relateduserid: Option<i64>,
    pub(super) origin: Origin,
    pub(super) realuserid: Option<i64>,
    pub(super) ip: u32,
}

/// Reading time between two clicks; mostly short, now and then a long pause under an hour.
fn click_gap(rng: &mut Rng) -> i64 {
    match rng.below(100) {
        0..=39 => rng.range(5, 60),
        40..=79 => rng.range(60, 240),
        80..=94 => rng.range(240, 900),
        95..=98 => rng.range(900, 2400),
        _ => rng.range(2400, 3500),
    }
}

/// Rough rows per session and seconds per row, only used to spread sessions over the log span.
const ROWS_PER_SESSION: i64 = 22;
const SECONDS_PER_ROW: i64 = 250;
const TARGET_SPAN: i64 = 180 * DAY;

struct Stream {
    user: usize,
    rng: Rng,
    queue: VecDeque<Ev>,
    mean_gap: i64,
    ip: u32,
    /// A local user's rows count towards `--log-rows`; a remote host's come on top.
    counted: bool,
}

pub(super) struct LogGen<'a> {
    site: &'a Site,
    streams: Vec<Stream>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    remaining: u64,
}

impl<'a> LogGen<'a> {
    pub(super) fn new(site: &'a Site, opts: &DemoOptions) -> LogGen<'a> {
        // Shares and the row count are the local site's, so that adding remote hosts (whose
        // learners log on top, until the local log ends) leaves every local row as it was.
        let local = |u: &DemoUser| !matches!(u.role, Role::RemoteAdmin | Role::RemoteLearner);
        let total_weight: u64 = site
            .users
            .iter()
            .filter(|u| local(u))
            .map(|u| u.weight as u64)
            .sum();
        let mut streams = Vec::new();
        let mut heap = BinaryHeap::new();
        for (ui, u) in site.users.iter().enumerate() {
            if u.weight == 0 || total_weight == 0 {
                continue;
            }
            let share = (opts.log_rows as u128 * u.weight as u128 / total_weight as u128) as i64;
            let sessions = (share / ROWS_PER_SESSION).max(1);
            let mean_gap =
                (TARGET_SPAN / sessions - ROWS_PER_SESSION * SECONDS_PER_ROW).max(20 * MINUTE);
            let mut rng = Rng::new(opts.seed, 1000 + u.id as u64);
            let ip = 0x0A00_0000 | ((u.id as u32 & 0xFFFF) << 8) | (rng.below(200) as u32 + 10);
            let mut s = Stream {
                user: ui,
                rng,
                queue: VecDeque::new(),
                mean_gap,
                ip,
                counted: local(u),
            };
            let first = s.rng.range(0, mean_gap);
            session(site, &mut s, first);
            if let Some(ev) = s.queue.front() {
                heap.push(Reverse((ev.time, streams.len())));
            }
            streams.push(s);
        }
        LogGen {
            site,
            streams,
            heap,
            remaining: opts.log_rows,
        }
    }
}

impl Iterator for LogGen<'_> {
    type Item = Ev;

    fn next(&mut self) -> Option<Ev> {
        if self.remaining == 0 {
            return None;
        }
        let Reverse((_, si)) = self.heap.pop()?;
        let s = &mut self.streams[si];
        let ev = s.queue.pop_front()?;
        if s.queue.is_empty() {
            let gap = s.mean_gap / 2 + s.rng.range(0, s.mean_gap);
            let gap = if s.rng.percent(4) {
                gap + s.rng.range(3, 12) * DAY
            } else {
                gap
            };
            session(self.site, s, ev.time + gap);
        }
        if let Some(next) = s.queue.front() {
            self.heap.push(Reverse((next.time, si)));
        }
        let counted = s.counted;
        if counted {
            self.remaining -= 1;
        }
        Some(ev)
    }
}

/// Appends one session of `s`'s user, starting at `t`, to its queue.
fn session(site: &Site, s: &mut Stream, start: i64) {
    let u = &site.users[s.user];
    let rng = &mut s.rng;
    let mobile = rng.percent(10);
    let ip = if mobile {
        0xC0A8_0000 | (rng.below(65_000) as u32)
    } else {
        s.ip
    };
    let origin = if mobile { Origin::Ws } else { Origin::Web };
    let mut t = start;
    let q = &mut s.queue;
    let base = Ev {
        time: t,
        user: s.user,
        tpl: &LOGIN,
        contextid: 1,
        contextlevel: CONTEXT_SYSTEM,
        contextinstanceid: 0,
        courseid: 0,
        objectid: Some(u.id),
        relateduserid: None,
        origin,
        realuserid: None,
        ip,
    };
    let system = |t: i64, tpl: &'static Tpl| Ev {
        time: t,
        tpl,
        objectid: tpl.objecttable.map(|_| u.id),
        ..base
    };

    if rng.percent(3) {
        q.push_back(system(t, &LOGIN_FAILED));
        t += rng.range(5, 40);
    }
    if rng.percent(85) {
        q.push_back(system(t, &LOGIN));
        t += rng.range(2, 30);
    }
    if rng.percent(30) {
        q.push_back(Ev {
            time: t,
            tpl: &DASHBOARD,
            contextid: u.ctx,
            contextlevel: CONTEXT_USER,
            contextinstanceid: u.id,
            objectid: None,
            ..base
        });
        t += click_gap(rng);
    }
    if rng.permille(5) {
        // An old import left some rows without an origin; they must still count (D10).
        for ev in q.iter_mut() {
            ev.origin = Origin::Null;
        }
    }

    if u.role == Role::Admin {
        for _ in 0..rng.range(1, 4) {
            q.push_back(system(t, &CONFIG_LOG));
            t += click_gap(rng);
        }
        if rng.percent(30) {
            let other = rng.pick(&site.users);
            q.push_back(Ev {
                time: t,
                tpl: &USER_UPDATED,
                contextid: other.ctx,
                contextlevel: CONTEXT_USER,
                contextinstanceid: other.id,
                objectid: Some(other.id),
                relateduserid: Some(other.id),
                ..base
            });
            t += click_gap(rng);
        }
    }

    let front = DemoCourse {
        id: 1,
        ctx: site.frontpage_ctx,
        category: 0,
        fullname: String::new(),
        shortname: String::new(),
        idnumber: String::new(),
        sections: Vec::new(),
        cms: Vec::new(),
        learners: Vec::new(),
    };
    let visits = 1 + rng.percent(30) as usize + rng.percent(10) as usize;
    for _ in 0..visits {
        t = visit(site, u, &base, &front, rng, q, t);
    }
    if rng.percent(30) {
        q.push_back(system(t, &LOGOUT));
    }
}

/// One visit of a session: a course (or the front page), its activities, in turn from `t`;
/// returns the time after it.
fn visit(
    site: &Site,
    u: &DemoUser,
    base: &Ev,
    front: &DemoCourse,
    rng: &mut Rng,
    q: &mut VecDeque<Ev>,
    mut t: i64,
) -> i64 {
    if rng.percent(8) || u.courses.is_empty() {
        q.push_back(base.in_course(t, &COURSE_VIEW, front));
        t += click_gap(rng);
        if u.courses.is_empty() {
            return t;
        }
    }
    let course = &site.courses[*rng.pick(&u.courses)];
    q.push_back(base.in_course(t, &COURSE_VIEW, course));
    t += click_gap(rng);
    let weights: Vec<u32> = course.cms.iter().map(|cm| cm.weight).collect();
    let steps = match u.role {
        Role::Admin => rng.range(1, 3),
        Role::Teacher => rng.range(3, 10),
        _ => rng.range(3, 16),
    };
    for _ in 0..steps {
        if rng.percent(12) {
            q.push_back(base.in_course(t, &COURSE_VIEW, course));
            t += click_gap(rng);
        }
        if rng.percent(2) {
            // Stepped away for over an hour in the middle of the session.
            t += rng.range(HOUR + 1, 3 * HOUR);
        }
        let cm = &course.cms[rng.weighted(&weights)];
        q.push_back(base.in_cm(t, cm.m.view(), course, cm, cm.instance));
        t += click_gap(rng);
        t = activity(site, u, base, course, cm, rng, q, t);
        if rng.permille(15) {
            // Cron marks completion: origin cli, which extraction must drop.
            q.push_back(Ev {
                origin: Origin::Cli,
                ip: 0,
                relateduserid: Some(u.id),
                ..base.in_cm(t, &COMPLETION_UPDATED, course, cm, rng.range(1, 100_000))
            });
        }
    }
    if rng.percent(10) {
        q.push_back(base.in_course(t, &GRADE_REPORT, course));
        t += click_gap(rng);
    }
    if u.role == Role::Admin && rng.percent(20) {
        q.push_back(Ev {
            objectid: Some(course.id),
            ..base.in_course(t, &COURSE_UPDATED, course)
        });
        t += click_gap(rng);
    }
    if matches!(u.role, Role::Learner | Role::RemoteLearner) && rng.permille(7) {
        // The admin "logged in as" this learner: rows carry realuserid and are dropped.
        let admin_id = site.users[site.admin].id;
        for _ in 0..rng.range(2, 4) {
            let cm = &course.cms[rng.weighted(&weights)];
            q.push_back(Ev {
                realuserid: Some(admin_id),
                ..base.in_cm(t, cm.m.view(), course, cm, cm.instance)
            });
            t += rng.range(5, 60);
        }
    }
    t
}

/// What `u` does on activity `cm` after viewing it, by role and module; returns the time after.
#[allow(clippy::too_many_arguments)]
fn activity(
    site: &Site,
    u: &DemoUser,
    base: &Ev,
    course: &DemoCourse,
    cm: &DemoCm,
    rng: &mut Rng,
    q: &mut VecDeque<Ev>,
    mut t: i64,
) -> i64 {
    match (u.role, cm.m) {
        (Role::Teacher, Mod::Assign) => {
            q.push_back(base.in_cm(t, &ASSIGN_GRADING_TABLE, course, cm, cm.instance));
            t += click_gap(rng);
            for _ in 0..rng.range(0, 4) {
                let Some(&learner) = course
                    .learners
                    .get(rng.below(course.learners.len().max(1) as u64) as usize)
                else {
                    break;
                };
                let lid = site.users[learner].id;
                let graded = Ev {
                    relateduserid: Some(lid),
                    ..base.in_cm(t, &ASSIGN_GRADED, course, cm, rng.range(1, 50_000))
                };
                q.push_back(graded);
                q.push_back(Ev {
                    relateduserid: Some(lid),
                    objectid: Some(rng.range(1, 500_000)),
                    ..base.in_course(t, &USER_GRADED, course)
                });
                t += rng.range(30, 300);
            }
        }
        (Role::Teacher, _) if rng.percent(10) => {
            q.push_back(base.in_cm(t, &CM_UPDATED, course, cm, cm.id));
            t += click_gap(rng);
        }
        (_, Mod::Forum) if rng.percent(50) => {
            q.push_back(base.in_cm(t, &FORUM_DISCUSSION, course, cm, rng.range(1, 5000)));
            t += click_gap(rng);
            if rng.percent(25) {
                q.push_back(base.in_cm(t, &FORUM_POST, course, cm, rng.range(1, 50_000)));
                t += click_gap(rng);
            }
        }
        (Role::Learner | Role::RemoteLearner, Mod::Quiz) if rng.percent(45) => {
            let attempt = rng.range(1, 1_000_000);
            q.push_back(base.in_cm(t, &QUIZ_STARTED, course, cm, attempt));
            t += rng.range(5, 30);
            for _ in 0..rng.range(1, 6) {
                q.push_back(base.in_cm(t, &QUIZ_ATTEMPT_VIEW, course, cm, attempt));
                t += click_gap(rng).min(600);
            }
            q.push_back(base.in_cm(t, &QUIZ_SUBMITTED, course, cm, attempt));
            // Automatic grading logs a user_graded row in the same second or the next.
            t += rng.range(0, 1);
            q.push_back(Ev {
                relateduserid: Some(u.id),
                objectid: Some(rng.range(1, 500_000)),
                ..base.in_course(t, &USER_GRADED, course)
            });
            t += click_gap(rng);
        }
        (Role::Learner | Role::RemoteLearner, Mod::Assign) => {
            q.push_back(base.in_cm(t, &ASSIGN_STATUS, course, cm, cm.instance));
            t += click_gap(rng);
            if rng.percent(30) {
                q.push_back(base.in_cm(t, &ASSIGN_SUBMITTED, course, cm, rng.range(1, 50_000)));
                t += click_gap(rng);
            }
        }
        _ => {}
    }
    t
}

impl Ev {
    /// This event at `t` as `tpl` in course `c`.
    fn in_course(&self, t: i64, tpl: &'static Tpl, c: &DemoCourse) -> Ev {
        Ev {
            time: t,
            tpl,
            contextid: c.ctx,
            contextlevel: CONTEXT_COURSE,
            contextinstanceid: c.id,
            courseid: c.id,
            objectid: None,
            ..*self
        }
    }

    /// This event at `t` as `tpl` on activity `cm` of course `c`, about object `obj`.
    fn in_cm(&self, t: i64, tpl: &'static Tpl, c: &DemoCourse, cm: &DemoCm, obj: i64) -> Ev {
        Ev {
            time: t,
            tpl,
            contextid: cm.ctx,
            contextlevel: CONTEXT_MODULE,
            contextinstanceid: cm.id,
            courseid: c.id,
            objectid: Some(obj),
            ..*self
        }
    }
}

/// What the dry run learns about the log it will write.
pub(super) struct Plan {
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) rows: u64,
    pub(super) per_user: Vec<UserActivity>,
}

#[derive(Clone, Copy, Default)]
pub(super) struct UserActivity {
    pub(super) rows: u64,
    pub(super) first: Option<i64>,
    pub(super) last: i64,
    pub(super) last_login: i64,
    pub(super) current_login: i64,
}

pub(super) fn plan(site: &Site, opts: &DemoOptions) -> Plan {
    let mut p = Plan {
        first: 0,
        last: 0,
        rows: 0,
        per_user: vec![UserActivity::default(); site.users.len()],
    };
    for ev in LogGen::new(site, opts) {
        if p.rows == 0 {
            p.first = ev.time;
        }
        p.last = ev.time;
        p.rows += 1;
        let a = &mut p.per_user[ev.user];
        a.rows += 1;
        a.first.get_or_insert(ev.time);
        a.last = ev.time;
        if std::ptr::eq(ev.tpl, &LOGIN) {
            a.last_login = a.current_login;
            a.current_login = ev.time;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::DemoOptions;
    use crate::demo::site::Site;

    #[test]
    fn generator_is_time_ordered_and_exact() {
        let opts = DemoOptions {
            log_rows: 20_000,
            users: 20,
            courses: 3,
            ..DemoOptions::default()
        };
        let site = Site::build(&opts);
        let mut last = i64::MIN;
        let mut n = 0;
        let mut remote = 0;
        for ev in LogGen::new(&site, &opts) {
            assert!(ev.time >= last);
            last = ev.time;
            if matches!(
                site.users[ev.user].role,
                Role::RemoteLearner | Role::RemoteAdmin
            ) {
                remote += 1;
            } else {
                n += 1;
            }
        }
        assert_eq!(n, 20_000, "--log-rows counts the local site's rows");
        assert!(remote > 0, "the default remote host's learners log on top");
    }

    /// (user id, time, event) of the local site's rows.
    fn local_rows(opts: &DemoOptions) -> Vec<(i64, i64, &'static str)> {
        let site = Site::build(opts);
        LogGen::new(&site, opts)
            .filter(|ev| {
                !matches!(
                    site.users[ev.user].role,
                    Role::RemoteLearner | Role::RemoteAdmin
                )
            })
            .map(|ev| (site.users[ev.user].id, ev.time, ev.tpl.eventname))
            .collect()
    }

    #[test]
    fn remote_hosts_leave_the_local_site_as_it_was() {
        let alone = DemoOptions {
            log_rows: 5_000,
            users: 15,
            courses: 3,
            remote_hosts: Vec::new(),
            ..DemoOptions::default()
        };
        let with_two = DemoOptions {
            remote_hosts: vec!["https://a.example".into(), "https://b.example".into()],
            ..alone.clone()
        };
        assert_eq!(local_rows(&alone), local_rows(&with_two));
        let (a, b) = (Site::build(&alone), Site::build(&with_two));
        let local = |s: &Site| -> Vec<(i64, String)> {
            s.users
                .iter()
                .filter(|u| u.mnethostid == 1)
                .map(|u| (u.id, u.username.clone()))
                .collect()
        };
        assert_eq!(local(&a), local(&b));
    }
}
