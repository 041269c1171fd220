//! Course groups (`groups`, `groups_members`): two to five per course, most learners in one,
//! some in two, a few in none, as on a real site. Drawn from a stream of their own (4), after
//! everything else, so that adding them changed no other row of a demo.

use super::rng::Rng;
use super::site::Site;
use super::sql::{Inserter, lit};
use crate::store::DbConnection;
use diesel::QueryResult;

/// Group names, one a group, in this order in every course.
const NAMES: [&str; 5] = [
    "Tutorial A",
    "Tutorial B",
    "Tutorial C",
    "Evening class",
    "Distance learners",
];

/// A course's group, with its members as indices into `Site::users`.
pub(super) struct DemoGroup {
    pub(super) id: i64,
    pub(super) course: i64,
    pub(super) name: &'static str,
    pub(super) members: Vec<usize>,
}

/// Every course's groups, ids from 1 in course order.
pub(super) fn build_groups(seed: u64, site: &Site) -> Vec<DemoGroup> {
    let mut rng = Rng::new(seed, 4);
    let mut out = Vec::new();
    for course in &site.courses {
        let first = out.len();
        let count = rng.range(2, NAMES.len() as i64) as usize;
        for name in NAMES.iter().take(count) {
            out.push(DemoGroup {
                id: out.len() as i64 + 1,
                course: course.id,
                name,
                members: Vec::new(),
            });
        }
        let groups = &mut out[first..];
        for &learner in &course.learners {
            // 85 % in one group, a tenth of those in a second one too; the rest in none.
            if !rng.percent(85) {
                continue;
            }
            let one = rng.below(count as u64) as usize;
            groups[one].members.push(learner);
            if rng.percent(10) {
                let other = (one + 1 + rng.below(count as u64 - 1) as usize) % count;
                groups[other].members.push(learner);
            }
        }
    }
    out
}

/// Writes the groups and their members.
pub(super) fn write_groups(
    conn: &mut DbConnection,
    p: &str,
    seed: u64,
    site: &Site,
    created: i64,
) -> QueryResult<()> {
    let mut groups = Inserter::new(
        &format!("{p}groups"),
        "id, courseid, idnumber, name, description, descriptionformat, picture, timecreated, \
         timemodified",
    );
    let mut members = Inserter::new(
        &format!("{p}groups_members"),
        "id, groupid, userid, timeadded, component, itemid",
    );
    let mut next_member = 1i64;
    for g in build_groups(seed, site) {
        groups.row(
            conn,
            &format!(
                "{}, {}, {}, {}, '', 1, 0, {created}, {created}",
                g.id,
                g.course,
                lit(&format!("G{}-{}", g.course, g.id)),
                lit(g.name)
            ),
        )?;
        for member in g.members {
            members.row(
                conn,
                &format!(
                    "{next_member}, {}, {}, {created}, '', 0",
                    g.id, site.users[member].id
                ),
            )?;
            next_member += 1;
        }
    }
    groups.flush(conn)?;
    members.flush(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::DemoOptions;

    #[test]
    fn every_course_has_two_to_five_groups_of_its_own_learners() {
        let site = Site::build(&DemoOptions {
            users: 300,
            ..DemoOptions::default()
        });
        let groups = build_groups(42, &site);
        for course in &site.courses {
            let mine: Vec<&DemoGroup> = groups.iter().filter(|g| g.course == course.id).collect();
            assert!((2..=5).contains(&mine.len()), "course {}", course.id);
            let placed: usize = mine.iter().map(|g| g.members.len()).sum();
            assert!(placed > 0, "course {}", course.id);
            for g in mine {
                assert!(g.members.iter().all(|m| course.learners.contains(m)));
                let mut unique = g.members.clone();
                unique.dedup();
                assert_eq!(unique.len(), g.members.len(), "a member twice in {}", g.id);
            }
        }
        // The same seed draws the same groups.
        let again = build_groups(42, &site);
        assert_eq!(
            groups.iter().map(|g| &g.members).collect::<Vec<_>>(),
            again.iter().map(|g| &g.members).collect::<Vec<_>>()
        );
    }
}
