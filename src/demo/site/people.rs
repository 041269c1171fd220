//! The demo's people: the guest and the local admin, teachers, learners (one suspended, one
//! deleted) and, per remote MNET host, an admin and three learners. Ids and usernames are handed
//! out in that order, from the site's generator.

use std::collections::HashSet;

use super::{DemoUser, Role, host_domain, take};
use crate::demo::DemoOptions;
use crate::demo::names::{FIRST_NAMES, LAST_NAMES};
use crate::demo::rng::{Rng, pick_distinct};

/// The accounts made so far, with the usernames taken on each host.
struct People {
    users: Vec<DemoUser>,
    taken: HashSet<(i64, String)>,
    next_user: i64,
}

impl People {
    fn next_id(&mut self) -> i64 {
        take(&mut self.next_user)
    }

    fn add(&mut self, u: DemoUser) -> usize {
        self.users.push(u);
        self.users.len() - 1
    }

    /// A random person whose username is free on `host` (a number is appended on a clash).
    fn person(&mut self, rng: &mut Rng, host: i64) -> (String, String, String) {
        let (fu, fd) = *rng.pick(FIRST_NAMES);
        let (lu, ld) = *rng.pick(LAST_NAMES);
        let base = format!("{fu}.{lu}");
        let mut username = base.clone();
        let mut n = 2;
        while self.taken.contains(&(host, username.clone())) {
            username = format!("{base}{n}");
            n += 1;
        }
        self.taken.insert((host, username.clone()));
        (username, fd.to_owned(), ld.to_owned())
    }
}

impl DemoUser {
    fn blank(id: i64, role: Role) -> DemoUser {
        DemoUser {
            id,
            ctx: 0,
            username: String::new(),
            firstname: String::new(),
            lastname: String::new(),
            email: String::new(),
            idnumber: String::new(),
            auth: "manual",
            mnethostid: 1,
            deleted: false,
            suspended: false,
            role,
            weight: 0,
            courses: Vec::new(),
        }
    }
}

/// Every account, in id order, and the index of the local admin.
pub(super) fn build_people(
    opts: &DemoOptions,
    hosts: &[(i64, String, String)],
    ncourses: usize,
    rng: &mut Rng,
) -> (Vec<DemoUser>, usize) {
    let mut people = People {
        users: Vec::new(),
        taken: HashSet::new(),
        next_user: 1,
    };
    let local_domain = host_domain(&opts.local_wwwroot);
    let admin = add_guest_and_admin(&mut people, &local_domain, ncourses);

    let total = opts.users.max(1) as usize;
    let nteachers = if total >= 3 {
        (ncourses.div_ceil(2)).clamp(1, total - 2)
    } else {
        0
    };
    let nlearners = total.saturating_sub(1 + nteachers);
    add_teachers(&mut people, rng, &local_domain, nteachers, ncourses);
    let first_learner_username = add_learners(&mut people, rng, &local_domain, nlearners, ncourses);
    if nlearners > 0 {
        add_deleted_account(&mut people, rng, &local_domain, ncourses);
    }
    add_remote_people(
        &mut people,
        rng,
        hosts,
        first_learner_username.as_deref(),
        ncourses,
    );
    (people.users, admin)
}

fn add_guest_and_admin(people: &mut People, local_domain: &str, ncourses: usize) -> usize {
    let mut guest = DemoUser::blank(people.next_id(), Role::Guest);
    guest.username = "guest".into();
    guest.firstname = "Guest user".into();
    guest.lastname = " ".into();
    people.taken.insert((1, "guest".into()));
    people.add(guest);
    let mut admin = DemoUser::blank(people.next_id(), Role::Admin);
    admin.username = "admin".into();
    admin.firstname = "Admin".into();
    admin.lastname = "User".into();
    admin.email = format!("admin@{local_domain}");
    admin.weight = 2;
    admin.courses = (0..ncourses).collect();
    people.taken.insert((1, "admin".into()));
    people.add(admin)
}

fn add_teachers(
    people: &mut People,
    rng: &mut Rng,
    local_domain: &str,
    nteachers: usize,
    ncourses: usize,
) {
    for t in 0..nteachers {
        let (username, firstname, lastname) = people.person(rng, 1);
        let mut u = DemoUser::blank(people.next_id(), Role::Teacher);
        u.email = format!("{username}@{local_domain}");
        u.idnumber = format!("T{:04}", u.id);
        u.username = username;
        u.firstname = firstname;
        u.lastname = lastname;
        u.weight = 4;
        u.courses = (0..ncourses).filter(|c| c % nteachers == t).collect();
        people.add(u);
    }
}

/// Adds the local learners and returns the first one's username.
fn add_learners(
    people: &mut People,
    rng: &mut Rng,
    local_domain: &str,
    nlearners: usize,
    ncourses: usize,
) -> Option<String> {
    let mut first_learner_username = None;
    for l in 0..nlearners {
        let (username, firstname, lastname) = people.person(rng, 1);
        let mut u = DemoUser::blank(people.next_id(), Role::Learner);
        u.email = format!("{username}@{local_domain}");
        u.idnumber = if l % 7 == 6 {
            String::new()
        } else {
            format!("S{:05}", 10000 + u.id)
        };
        first_learner_username.get_or_insert_with(|| username.clone());
        u.username = username;
        u.firstname = firstname;
        u.lastname = lastname;
        // A few heavy users, many moderate ones, some barely active.
        u.weight = match rng.below(10) {
            0 => 12,
            1..=6 => rng.range(3, 8) as u32,
            _ => rng.range(1, 2) as u32,
        };
        u.suspended = l == 4;
        let k = rng.range(2, 4).min(ncourses as i64) as usize;
        u.courses = pick_distinct(rng, ncourses, k);
        people.add(u);
    }
    first_learner_username
}

/// A deleted account, renamed the way Moodle renames them.
fn add_deleted_account(people: &mut People, rng: &mut Rng, local_domain: &str, ncourses: usize) {
    let mut u = DemoUser::blank(people.next_id(), Role::Learner);
    u.deleted = true;
    u.username = format!("old.account@{local_domain}.1767225600");
    u.firstname = "Former".into();
    u.lastname = "Student".into();
    u.weight = 1;
    u.courses = pick_distinct(rng, ncourses, 1.min(ncourses));
    people.add(u);
}

/// Remote MNET people: an admin per host (so a remote admin can be granted) and learners,
/// the first of whom shares a username with a local learner (B17).
fn add_remote_people(
    people: &mut People,
    rng: &mut Rng,
    hosts: &[(i64, String, String)],
    first_learner_username: Option<&str>,
    ncourses: usize,
) {
    for (hid, _, domain) in hosts.iter().skip(2) {
        let mut a = DemoUser::blank(people.next_id(), Role::RemoteAdmin);
        a.username = "admin".into();
        a.firstname = "Admin".into();
        a.lastname = format!("({domain})");
        a.email = format!("admin@{domain}");
        a.auth = "mnet";
        a.mnethostid = *hid;
        people.taken.insert((*hid, "admin".into()));
        people.add(a);
        for r in 0..3 {
            let (mut username, firstname, lastname) = people.person(rng, *hid);
            if r == 0
                && let Some(shared) = first_learner_username
                && !people.taken.contains(&(*hid, shared.to_owned()))
            {
                people.taken.insert((*hid, shared.to_owned()));
                username = shared.to_owned();
            }
            let mut u = DemoUser::blank(people.next_id(), Role::RemoteLearner);
            u.email = format!("{username}@{domain}");
            u.username = username;
            u.firstname = firstname;
            u.lastname = lastname;
            u.auth = "mnet";
            u.mnethostid = *hid;
            u.weight = 3;
            let k = rng.range(1, 2).min(ncourses as i64) as usize;
            u.courses = pick_distinct(rng, ncourses, k);
            people.add(u);
        }
    }
}
