//! The synthetic site in memory: MNET hosts, categories, courses with their sections and
//! activities, people on the local and remote hosts, enrolment methods and enrolments. Built
//! once from the options; the log generator and the SQL writer only read it.

use super::events::Mod;
use super::names::{COURSE_CATALOG, TOPICS};
use super::rng::Rng;
use super::{DAY, DemoOptions};

mod people;

use people::build_people;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Guest,
    Admin,
    Teacher,
    Learner,
    RemoteAdmin,
    RemoteLearner,
}

pub(super) struct DemoUser {
    pub(super) id: i64,
    pub(super) ctx: i64,
    pub(super) username: String,
    pub(super) firstname: String,
    pub(super) lastname: String,
    pub(super) email: String,
    pub(super) idnumber: String,
    pub(super) auth: &'static str,
    pub(super) mnethostid: i64,
    pub(super) deleted: bool,
    pub(super) suspended: bool,
    pub(super) role: Role,
    /// Relative activity; 0 means no log rows at all.
    pub(super) weight: u32,
    /// Indices into `Site::courses` the user works in.
    pub(super) courses: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmFate {
    Live,
    /// The course_modules row was deleted but the module context stayed behind.
    CmGone,
    /// Both the course_modules row and its context were deleted; the log still names them.
    ContextGone,
}

pub(super) struct DemoCm {
    pub(super) id: i64,
    pub(super) m: Mod,
    pub(super) instance: i64,
    pub(super) section_id: i64,
    pub(super) ctx: i64,
    pub(super) name: String,
    pub(super) idnumber: Option<String>,
    pub(super) weight: u32,
    pub(super) fate: CmFate,
}

pub(super) struct DemoCourse {
    pub(super) id: i64,
    pub(super) ctx: i64,
    pub(super) category: i64,
    pub(super) fullname: String,
    pub(super) shortname: String,
    pub(super) idnumber: String,
    /// (course_sections.id, section number, name)
    pub(super) sections: Vec<(i64, i64, String)>,
    pub(super) cms: Vec<DemoCm>,
    pub(super) learners: Vec<usize>,
}

pub(super) struct Enrolment {
    pub(super) enrolid: i64,
    pub(super) user: usize,
    pub(super) status: i64,
    /// Start relative to the log start; None is Moodle's "no start" (0).
    pub(super) start: Option<i64>,
    pub(super) end_after: Option<i64>,
}

pub(super) struct EnrolInstance {
    pub(super) id: i64,
    pub(super) course: usize,
    pub(super) method: &'static str,
    pub(super) status: i64,
}

pub(super) struct Site {
    pub(super) hosts: Vec<(i64, String, String)>,
    pub(super) users: Vec<DemoUser>,
    pub(super) courses: Vec<DemoCourse>,
    pub(super) enrol: Vec<EnrolInstance>,
    pub(super) enrolments: Vec<Enrolment>,
    pub(super) category_ctx: Vec<(i64, i64)>,
    pub(super) frontpage_ctx: i64,
    pub(super) admin: usize,
}

fn host_domain(wwwroot: &str) -> String {
    let s = wwwroot.split("://").nth(1).unwrap_or(wwwroot);
    let host: String = s
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    if host.is_empty() {
        "example.org".into()
    } else {
        host
    }
}

struct Ids {
    next_ctx: i64,
}

impl Ids {
    fn ctx(&mut self) -> i64 {
        let c = self.next_ctx;
        self.next_ctx += 1;
        c
    }
}

/// The next free id of a table, counting from 1 as Moodle's sequences do.
fn take(next: &mut i64) -> i64 {
    let id = *next;
    *next += 1;
    id
}

/// Where the course builder is in the id sequences it shares across courses.
struct CourseIds {
    section: i64,
    cm: i64,
    /// Next instance id per module table, indexed by `Mod::module_id() - 1`.
    instance: [i64; 7],
}

impl CourseIds {
    fn instance(&mut self, m: Mod) -> i64 {
        take(&mut self.instance[m.module_id() as usize - 1])
    }
}

impl Site {
    /// The steps draw from the generator in a fixed order (courses, then people, with stream 1;
    /// enrolments with stream 2) and hand out context ids in the same order: reordering them
    /// changes every demo site.
    pub(super) fn build(opts: &DemoOptions) -> Site {
        let mut rng = Rng::new(opts.seed, 1);
        let mut ids = Ids { next_ctx: 2 };
        let hosts = hosts(opts);

        let ncat = (opts.courses as i64).clamp(1, 3);
        let category_ctx: Vec<(i64, i64)> = (1..=ncat).map(|c| (c, ids.ctx())).collect();
        let frontpage_ctx = ids.ctx();

        let mut courses = build_courses(opts, ncat, &mut rng, &mut ids);
        let (mut users, admin) = build_people(opts, &hosts, courses.len(), &mut rng);
        for u in &mut users {
            u.ctx = ids.ctx();
        }
        let enrol = enrol_instances(&courses);
        let enrolments = build_enrolments(opts.seed, &users);
        for (ui, u) in users.iter().enumerate() {
            if matches!(u.role, Role::Learner | Role::RemoteLearner) {
                for &ci in &u.courses {
                    courses[ci].learners.push(ui);
                }
            }
        }

        Site {
            hosts,
            users,
            courses,
            enrol,
            enrolments,
            category_ctx,
            frontpage_ctx,
            admin,
        }
    }
}

/// `mnet_host`: the local site (1), Moodle's "All Hosts" (2), then one per remote host.
fn hosts(opts: &DemoOptions) -> Vec<(i64, String, String)> {
    let mut hosts = vec![
        (1, opts.local_wwwroot.clone(), "Local site".to_owned()),
        (2, String::new(), "All Hosts".to_owned()),
    ];
    for (i, w) in opts.remote_hosts.iter().enumerate() {
        hosts.push((3 + i as i64, w.clone(), host_domain(w)));
    }
    hosts
}

/// Courses, sections and activities.
fn build_courses(opts: &DemoOptions, ncat: i64, rng: &mut Rng, ids: &mut Ids) -> Vec<DemoCourse> {
    let mut courses = Vec::new();
    let mut next = CourseIds {
        section: 1,
        cm: 1,
        instance: [1; 7],
    };
    for i in 0..opts.courses as usize {
        let (base_full, base_short) = COURSE_CATALOG[i % COURSE_CATALOG.len()];
        let round = i / COURSE_CATALOG.len();
        let (fullname, shortname) = if round == 0 {
            (base_full.to_owned(), base_short.to_owned())
        } else {
            (
                format!("{base_full} (cohort {})", round + 1),
                format!("{base_short}-{}", round + 1),
            )
        };
        let id = i as i64 + 2;
        let idnumber = if i % 4 == 3 {
            String::new()
        } else {
            format!("C2026-{shortname}")
        };
        let ctx = ids.ctx();
        let nsections = rng.range(4, 7);
        let mut sections = Vec::new();
        let mut cms = Vec::new();
        for s in 0..=nsections {
            let sid = take(&mut next.section);
            let name = if s == 0 {
                "General".to_owned()
            } else {
                format!("Week {s}: {}", rng.pick(TOPICS))
            };
            sections.push((sid, s, name));
            for (m, name, weight) in section_plan(rng, s) {
                let instance = next.instance(m);
                let cmid = take(&mut next.cm);
                let idnumber = match m {
                    Mod::Quiz | Mod::Assign => Some(format!("{shortname}-{}{cmid}", m.name())),
                    _ if rng.percent(50) => Some(String::new()),
                    _ => None,
                };
                cms.push(DemoCm {
                    id: cmid,
                    m,
                    instance,
                    section_id: sid,
                    ctx: ids.ctx(),
                    name,
                    idnumber,
                    weight,
                    fate: CmFate::Live,
                });
            }
        }
        if i == 0 {
            add_deleted_cms(&mut cms, sections[1].0, &mut next, ids);
        }
        courses.push(DemoCourse {
            id,
            ctx,
            category: (i as i64 % ncat) + 1,
            fullname,
            shortname,
            idnumber,
            sections,
            cms,
            learners: Vec::new(),
        });
    }
    courses
}

/// The activities of section `s` as (module, name, weight): fixed ones in section 0, a random
/// mix after.
fn section_plan(rng: &mut Rng, s: i64) -> Vec<(Mod, String, u32)> {
    let mut plan: Vec<(Mod, String, u32)> = Vec::new();
    if s == 0 {
        plan.push((Mod::Forum, "Announcements".into(), 3));
        plan.push((Mod::Page, "Course guide".into(), 4));
        plan.push((Mod::LearningTimeCheck, "Learning time check".into(), 3));
    } else {
        plan.push((Mod::Page, format!("Week {s} reading"), 8));
        plan.push((Mod::Resource, format!("Lecture slides {s}"), 6));
        if rng.percent(50) {
            plan.push((Mod::Url, format!("Further reading {s}"), 3));
        }
        if rng.percent(70) {
            plan.push((Mod::Quiz, format!("Quiz {s}: {}", rng.pick(TOPICS)), 7));
        }
        if s % 2 == 0 {
            plan.push((Mod::Assign, format!("Assignment {}", s / 2), 6));
        }
        if rng.percent(40) {
            plan.push((Mod::Forum, format!("Discussion week {s}"), 4));
        }
    }
    plan
}

/// Two deleted activities that the log still mentions (E14).
fn add_deleted_cms(cms: &mut Vec<DemoCm>, section_id: i64, next: &mut CourseIds, ids: &mut Ids) {
    for (fate, title, m) in [
        (CmFate::CmGone, "Old handout", Mod::Resource),
        (CmFate::ContextGone, "Withdrawn quiz", Mod::Quiz),
    ] {
        let instance = next.instance(m);
        cms.push(DemoCm {
            id: next.cm,
            m,
            instance,
            section_id,
            ctx: ids.ctx(),
            name: title.into(),
            idnumber: None,
            weight: 1,
            fate,
        });
        next.cm += 1;
    }
}

/// Enrolment methods: manual, guest and self in every course, ids in that order.
fn enrol_instances(courses: &[DemoCourse]) -> Vec<EnrolInstance> {
    let mut enrol = Vec::new();
    let mut next_enrol = 1i64;
    for (ci, _) in courses.iter().enumerate() {
        for (method, status) in [
            ("manual", 0),
            ("guest", 1),
            ("self", if ci % 2 == 0 { 0 } else { 1 }),
        ] {
            enrol.push(EnrolInstance {
                id: next_enrol,
                course: ci,
                method,
                status,
            });
            next_enrol += 1;
        }
    }
    enrol
}

fn manual_enrol(ci: usize) -> i64 {
    (ci * 3) as i64 + 1
}

fn self_enrol(ci: usize) -> i64 {
    (ci * 3) as i64 + 3
}

/// Teachers through the manual method; learners with a random start, end and method.
fn build_enrolments(seed: u64, users: &[DemoUser]) -> Vec<Enrolment> {
    let mut erng = Rng::new(seed, 2);
    let mut enrolments = Vec::new();
    for (ui, u) in users.iter().enumerate() {
        if u.deleted {
            continue;
        }
        for &ci in &u.courses {
            match u.role {
                Role::Teacher => enrolments.push(Enrolment {
                    enrolid: manual_enrol(ci),
                    user: ui,
                    status: 0,
                    start: None,
                    end_after: None,
                }),
                Role::Learner | Role::RemoteLearner => {
                    learner_enrolments(&mut erng, ui, ci, &mut enrolments);
                }
                _ => {}
            }
        }
    }
    enrolments
}

fn learner_enrolments(erng: &mut Rng, ui: usize, ci: usize, out: &mut Vec<Enrolment>) {
    let start = match erng.below(100) {
        0..=59 => Some(-erng.range(1, 30) * DAY),
        60..=74 => None,
        75..=89 => Some(erng.range(5, 60) * DAY),
        _ => Some(-erng.range(100, 200) * DAY),
    };
    let end_after = erng.percent(10).then_some(365 * DAY);
    if erng.percent(10) {
        // Re-enrolled: an old suspended manual enrolment and a newer one.
        out.push(Enrolment {
            enrolid: manual_enrol(ci),
            user: ui,
            status: 1,
            start: Some(-erng.range(250, 400) * DAY),
            end_after: None,
        });
        out.push(Enrolment {
            enrolid: self_enrol(ci),
            user: ui,
            status: 0,
            start,
            end_after,
        });
    } else {
        let via_self = erng.percent(20);
        out.push(Enrolment {
            enrolid: if via_self {
                self_enrol(ci)
            } else {
                manual_enrol(ci)
            },
            user: ui,
            status: if erng.percent(5) { 1 } else { 0 },
            start,
            end_after,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn usernames_are_unique_per_host() {
        let site = Site::build(&DemoOptions {
            users: 500,
            ..DemoOptions::default()
        });
        let mut seen = HashSet::new();
        for u in &site.users {
            assert!(
                seen.insert((u.mnethostid, u.username.clone())),
                "{}",
                u.username
            );
        }
    }
}
