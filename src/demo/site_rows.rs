//! The site's rows: every source table except the log, written from the in-memory site in
//! multi-row INSERTs, one step per table (or per group of tables filled in one pass).

use super::DAY;
use super::DemoOptions;
use super::events::{MODS, Mod, OTHER_MODULES};
use super::log::Plan;
use super::rng::Rng;
use super::site::{CmFate, Site};
use super::sql::{Inserter, lit, opt_lit};
use crate::store::DbConnection;
use crate::store::source::{
    CONTEXT_COURSE, CONTEXT_COURSECAT, CONTEXT_MODULE, CONTEXT_SYSTEM, CONTEXT_USER,
};
use diesel::QueryResult;

/// What every step writes from: the site, the dry run of its log and the times that place the
/// site around that log.
#[derive(Clone, Copy)]
struct SiteRows<'a> {
    /// Table prefix.
    p: &'a str,
    site: &'a Site,
    plan: &'a Plan,
    seed: u64,
    /// Added to generated log times so that the log ends at the anchor.
    offset: i64,
    /// Time of the first log row, shifted.
    log_start: i64,
    /// Time of the last log row (the anchor).
    end: i64,
    /// When accounts, courses and activities were made: well before the log.
    created: i64,
}

/// Writes every source table but the log, in the order of the steps below.
pub(super) fn write_site(
    conn: &mut DbConnection,
    p: &str,
    opts: &DemoOptions,
    site: &Site,
    plan: &Plan,
    offset: i64,
    log_start: i64,
) -> QueryResult<()> {
    let r = SiteRows {
        p,
        site,
        plan,
        seed: opts.seed,
        offset,
        log_start,
        end: opts.anchor,
        created: log_start - 400 * DAY,
    };
    write_config(conn, &r)?;
    write_hosts(conn, &r)?;
    write_users(conn, &r)?;
    write_courses(conn, &r)?;
    write_course_contents(conn, &r)?;
    write_modules(conn, &r)?;
    write_contexts(conn, &r)?;
    write_enrol(conn, &r)?;
    write_user_enrolments(conn, &r)?;
    super::groups::write_groups(conn, p, r.seed, site, r.created)?;
    write_gradebook(conn, &r)
}

/// The `config` rows that name the local and "All Hosts" MNET ids.
fn write_config(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows { p, .. } = *r;
    let mut ins = Inserter::new(&format!("{p}config"), "id, name, value");
    ins.row(conn, "1, 'mnet_localhost_id', '1'")?;
    ins.row(conn, "2, 'mnet_all_hosts_id', '2'")?;
    ins.row(conn, "3, 'siteidentifier', 'usestatsdemo'")?;
    ins.flush(conn)?;
    Ok(())
}

fn write_hosts(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows { p, site, .. } = *r;
    let mut ins = Inserter::new(
        &format!("{p}mnet_host"),
        "id, deleted, wwwroot, ip_address, name, public_key, applicationid",
    );
    for (id, wwwroot, name) in &site.hosts {
        ins.row(
            conn,
            &format!("{id}, 0, {}, '', {}, '', 1", lit(wwwroot), lit(name)),
        )?;
    }
    ins.flush(conn)?;
    Ok(())
}

/// Accounts, with first, last and login times taken from the dry run of the log.
fn write_users(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows {
        p,
        site,
        plan,
        offset,
        created,
        ..
    } = *r;
    let mut ins = Inserter::new(
        &format!("{p}user"),
        "id, auth, confirmed, deleted, suspended, mnethostid, username, password, idnumber, \
         firstname, lastname, email, firstaccess, lastaccess, lastlogin, currentlogin, \
         timecreated, timemodified",
    );
    for (u, a) in site.users.iter().zip(&plan.per_user) {
        let shift = |t: i64| if t == 0 { 0 } else { t + offset };
        ins.row(
            conn,
            &format!(
                "{}, {}, 1, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {created}, {created}",
                u.id,
                lit(u.auth),
                u.deleted as i64,
                u.suspended as i64,
                u.mnethostid,
                lit(&u.username),
                lit(if u.auth == "manual" { "$2y$10$demo.not.a.real.hash" } else { "not cached" }),
                lit(&u.idnumber),
                lit(&u.firstname),
                lit(&u.lastname),
                lit(&u.email),
                a.first.map_or(0, |t| t + offset),
                shift(a.last),
                shift(a.last_login),
                shift(a.current_login),
            ),
        )?;
    }
    ins.flush(conn)?;
    Ok(())
}

/// The front page (course 1) and the courses.
fn write_courses(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows {
        p,
        site,
        log_start,
        end,
        created,
        ..
    } = *r;
    let mut ins = Inserter::new(
        &format!("{p}course"),
        "id, category, sortorder, fullname, shortname, idnumber, format, startdate, enddate, \
         visible, timecreated, timemodified",
    );
    ins.row(
        conn,
        &format!(
            "1, 0, 1, 'Usestats Demo Site', 'demo', '', 'site', 0, 0, 1, {created}, {created}"
        ),
    )?;
    for (i, c) in site.courses.iter().enumerate() {
        ins.row(
            conn,
            &format!(
                "{}, {}, {}, {}, {}, {}, 'topics', {}, {}, 1, {created}, {created}",
                c.id,
                c.category,
                10000 * c.category + i as i64,
                lit(&c.fullname),
                lit(&c.shortname),
                lit(&c.idnumber),
                log_start - 14 * DAY,
                end + 30 * DAY,
            ),
        )?;
    }
    ins.flush(conn)?;
    Ok(())
}

/// Sections, course modules and the module instances (`assign`, `quiz`, …) of every course;
/// deleted activities leave no row here.
fn write_course_contents(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows {
        p, site, created, ..
    } = *r;
    let mut sections = Inserter::new(
        &format!("{p}course_sections"),
        "id, course, section, name, sequence, visible, timemodified",
    );
    let mut cms = Inserter::new(
        &format!("{p}course_modules"),
        "id, course, module, instance, section, idnumber, added, visible, deletioninprogress",
    );
    let mut instances: Vec<Inserter> = MODS
        .iter()
        .map(|m| Inserter::new(&format!("{p}{}", m.name()), "id, course, name"))
        .collect();
    for c in &site.courses {
        for (sid, num, name) in &c.sections {
            let seq: Vec<String> = c
                .cms
                .iter()
                .filter(|cm| cm.section_id == *sid && cm.fate == CmFate::Live)
                .map(|cm| cm.id.to_string())
                .collect();
            sections.row(
                conn,
                &format!(
                    "{sid}, {}, {num}, {}, {}, 1, {created}",
                    c.id,
                    if *num == 0 {
                        "NULL".to_owned()
                    } else {
                        lit(name)
                    },
                    lit(&seq.join(","))
                ),
            )?;
        }
        for cm in &c.cms {
            if cm.fate != CmFate::Live {
                continue;
            }
            cms.row(
                conn,
                &format!(
                    "{}, {}, {}, {}, {}, {}, {created}, 1, 0",
                    cm.id,
                    c.id,
                    cm.m.module_id(),
                    cm.instance,
                    cm.section_id,
                    opt_lit(cm.idnumber.as_deref()),
                ),
            )?;
            let k = cm.m.module_id() as usize - 1;
            instances[k].row(
                conn,
                &format!("{}, {}, {}", cm.instance, c.id, lit(&cm.name)),
            )?;
        }
    }
    sections.flush(conn)?;
    cms.flush(conn)?;
    for mut i in instances {
        i.flush(conn)?;
    }
    Ok(())
}

/// Installed module types: those with instances first, in the ids `Mod::module_id` gives.
fn write_modules(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows { p, .. } = *r;
    let mut ins = Inserter::new(&format!("{p}modules"), "id, name, visible");
    for m in MODS {
        ins.row(conn, &format!("{}, '{}', 1", m.module_id(), m.name()))?;
    }
    for (i, name) in OTHER_MODULES.iter().enumerate() {
        ins.row(conn, &format!("{}, '{name}', 1", MODS.len() + 1 + i))?;
    }
    ins.flush(conn)?;
    Ok(())
}

/// System, category, front page, course, module and user contexts; a module whose context was
/// deleted has none.
fn write_contexts(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows { p, site, .. } = *r;
    let mut ins = Inserter::new(
        &format!("{p}context"),
        "id, contextlevel, instanceid, path, depth, locked",
    );
    ins.row(conn, &format!("1, {CONTEXT_SYSTEM}, 0, '/1', 1, 0"))?;
    for (cat, ctx) in &site.category_ctx {
        ins.row(
            conn,
            &format!("{ctx}, {CONTEXT_COURSECAT}, {cat}, '/1/{ctx}', 2, 0"),
        )?;
    }
    ins.row(
        conn,
        &format!(
            "{0}, {CONTEXT_COURSE}, 1, '/1/{0}', 2, 0",
            site.frontpage_ctx
        ),
    )?;
    for c in &site.courses {
        let cat_ctx = site
            .category_ctx
            .iter()
            .find(|(cat, _)| *cat == c.category)
            .map_or(1, |x| x.1);
        let path = format!("/1/{cat_ctx}/{}", c.ctx);
        ins.row(
            conn,
            &format!("{}, {CONTEXT_COURSE}, {}, '{path}', 3, 0", c.ctx, c.id),
        )?;
        for cm in &c.cms {
            if cm.fate == CmFate::ContextGone {
                continue;
            }
            ins.row(
                conn,
                &format!(
                    "{}, {CONTEXT_MODULE}, {}, '{path}/{}', 4, 0",
                    cm.ctx, cm.id, cm.ctx
                ),
            )?;
        }
    }
    for u in &site.users {
        ins.row(
            conn,
            &format!("{0}, {CONTEXT_USER}, {1}, '/1/{0}', 2, 0", u.ctx, u.id),
        )?;
    }
    ins.flush(conn)?;
    Ok(())
}

fn write_enrol(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows {
        p, site, created, ..
    } = *r;
    let mut ins = Inserter::new(
        &format!("{p}enrol"),
        "id, enrol, status, courseid, sortorder, roleid, timecreated, timemodified",
    );
    for (i, e) in site.enrol.iter().enumerate() {
        ins.row(
            conn,
            &format!(
                "{}, '{}', {}, {}, {}, 5, {created}, {created}",
                e.id,
                e.method,
                e.status,
                site.courses[e.course].id,
                i % 3
            ),
        )?;
    }
    ins.flush(conn)?;
    Ok(())
}

fn write_user_enrolments(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows {
        p, site, log_start, ..
    } = *r;
    let mut ins = Inserter::new(
        &format!("{p}user_enrolments"),
        "id, status, enrolid, userid, timestart, timeend, modifierid, timecreated, timemodified",
    );
    for (i, e) in site.enrolments.iter().enumerate() {
        let start = e.start.map_or(0, |s| log_start + s);
        let timeend = e
            .end_after
            .map_or(2_147_483_647, |d| start.max(log_start) + d);
        let made = e
            .start
            .map_or(log_start - 30 * DAY, |s| log_start + s.min(0) - DAY);
        ins.row(
            conn,
            &format!(
                "{}, {}, {}, {}, {start}, {timeend}, 2, {made}, {made}",
                i + 1,
                e.status,
                e.enrolid,
                site.users[e.user].id
            ),
        )?;
    }
    ins.flush(conn)?;
    Ok(())
}

/// Gradebook: a course total per course and an item per quiz and assignment, with grades for
/// most learners.
fn write_gradebook(conn: &mut DbConnection, r: &SiteRows) -> QueryResult<()> {
    let SiteRows {
        p,
        site,
        seed,
        end,
        created,
        ..
    } = *r;
    let mut grng = Rng::new(seed, 3);
    let mut items = Inserter::new(
        &format!("{p}grade_items"),
        "id, courseid, categoryid, itemname, itemtype, itemmodule, iteminstance, grademax, \
         grademin, sortorder, timecreated, timemodified",
    );
    let mut grades = Inserter::new(
        &format!("{p}grade_grades"),
        "id, itemid, userid, rawgrade, rawgrademax, rawgrademin, finalgrade, timecreated, \
         timemodified",
    );
    let (mut next_item, mut next_grade) = (1i64, 1i64);
    let hundredths = |h: i64| format!("{}.{:02}", h / 100, h % 100);
    let mut first_grade = true;
    for c in &site.courses {
        let course_item = next_item;
        next_item += 1;
        items.row(
            conn,
            &format!(
                "{course_item}, {}, NULL, NULL, 'course', NULL, NULL, 100, 0, 1, {created}, {created}",
                c.id
            ),
        )?;
        let mut mod_items = Vec::new();
        for cm in c.cms.iter().filter(|cm| cm.fate == CmFate::Live) {
            if matches!(cm.m, Mod::Quiz | Mod::Assign) {
                items.row(
                    conn,
                    &format!(
                        "{next_item}, {}, NULL, {}, 'mod', '{}', {}, 100, 0, {}, {created}, {created}",
                        c.id,
                        lit(&cm.name),
                        cm.m.name(),
                        cm.instance,
                        next_item - course_item + 1
                    ),
                )?;
                mod_items.push(next_item);
                next_item += 1;
            }
        }
        for &l in &c.learners {
            let uid = site.users[l].id;
            let when = end - grng.range(0, 60) * DAY;
            // Finalgrade only (most), rawgrade only, both NULL, or no row at all.
            let (raw, fin) = match grng.below(10) {
                0..=6 => (None, Some(grng.range(3500, 10000))),
                7 => (Some(grng.range(3500, 10000)), None),
                8 => (None, None),
                _ => continue,
            };
            // The first learner's first course shows the documented "72.50000".
            let fin = if first_grade { Some(7250) } else { fin };
            let raw = if first_grade { None } else { raw };
            first_grade = false;
            grades.row(
                conn,
                &format!(
                    "{next_grade}, {course_item}, {uid}, {}, 100, 0, {}, {when}, {when}",
                    raw.map_or("NULL".to_owned(), hundredths),
                    fin.map_or("NULL".to_owned(), hundredths),
                ),
            )?;
            next_grade += 1;
            for &item in &mod_items {
                if grng.percent(60) {
                    let g = grng.range(0, 10000);
                    grades.row(
                        conn,
                        &format!(
                            "{next_grade}, {item}, {uid}, {0}, 100, 0, {0}, {when}, {when}",
                            hundredths(g)
                        ),
                    )?;
                    next_grade += 1;
                }
            }
        }
    }
    items.flush(conn)?;
    grades.flush(conn)?;
    Ok(())
}
