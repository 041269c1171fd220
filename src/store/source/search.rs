//! Finding people and courses from what an operator remembers of them: part of a name, a
//! username, an email address, an id number, an id.
//!
//! A user search is one statement, two at most. The first looks the text up exactly as an id,
//! a username, an email address or an id number, each through an index of Moodle's own on
//! `user`; what it finds is the answer. Only when it finds nobody does a second statement look
//! for the text anywhere in the full name ("first last"), ignoring case, as Moodle's own user
//! search does. A substring has no index to use, so that statement reads the table, and it is
//! bounded: it stops at `limit + 1` matches and the answer says when there were more.

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};

use super::query::{self, Backend, Bind, in_list};
use super::users::{RawUser, USER_COLUMNS};
use super::{Course, Source, SourceError, User};
use crate::store::DbConnection;

/// The most matches one search returns; a caller asking for more gets this many.
pub const MAX_MATCHES: usize = 500;

/// What a user search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSearch {
    pub users: Vec<FoundUser>,
    /// More users matched than the limit: the search should be narrowed.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUser {
    pub user: User,
    /// The wwwroot of the user's home host (`mnet_host`), empty when the row is missing.
    pub host: String,
    /// Whether the home host is this site (`config.mnet_localhost_id`).
    pub local: bool,
    /// Matched exactly (id, username, email or idnumber), not as part of the name.
    pub exact: bool,
}

/// One course of the course index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedCourse {
    pub course: Course,
    /// Users with an active enrolment (E6), not deleted.
    pub learners: i64,
}

/// One page of the course index, and how many courses matched in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoursePage {
    pub courses: Vec<IndexedCourse>,
    pub total: i64,
}

/// How the course index is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CourseOrder {
    #[default]
    ShortName,
    FullName,
    /// Most learners first.
    Learners,
    Id,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct CourseCount {
    #[diesel(sql_type = BigInt)]
    courseid: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct CourseId {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    shortname: String,
    #[diesel(sql_type = Text)]
    fullname: String,
}

/// `text` as a LIKE pattern matching it anywhere, with `!` escaping LIKE's own characters
/// (not a backslash: MySQL reads backslashes in literals differently by its SQL mode).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// "`expr` contains the pattern at `$n`", ignoring case: PostgreSQL's ILIKE; SQLite's LIKE
/// ignores ASCII case and MySQL's follows the column's (case-insensitive) collation.
fn like(backend: Backend, expr: &str, n: usize) -> String {
    let op = if backend == Backend::Postgres {
        "ILIKE"
    } else {
        "LIKE"
    };
    format!("{expr} {op} ${n} ESCAPE '!'")
}

fn full_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Mysql => "CONCAT(firstname, ' ', lastname)",
        Backend::Sqlite | Backend::Postgres => "(firstname || ' ' || lastname)",
    }
}

impl Source {
    /// Users (not deleted) whose id, username, email or idnumber is `text`; when there is
    /// none, those whose full name contains it, ignoring case. At most `limit` (1 to
    /// [`MAX_MATCHES`]), by last name, first name and id.
    pub fn search_users(
        &self,
        conn: &mut DbConnection,
        text: &str,
        limit: usize,
    ) -> Result<UserSearch, SourceError> {
        let text = text.trim();
        let limit = limit.clamp(1, MAX_MATCHES);
        if text.is_empty() {
            return Ok(UserSearch::default());
        }
        let hosts = self.mnet_hosts(conn)?;
        let local = self.local_mnet_host_id(conn)?;
        let host_ids: Vec<i64> = hosts.iter().map(|h| h.id).collect();
        let mut found = self.exact_users(conn, text, &host_ids)?;
        let exact = !found.is_empty();
        if !exact {
            found = self.users_named(conn, text, limit + 1)?;
        }
        found.sort_by(by_name);
        let truncated = found.len() > limit;
        found.truncate(limit);
        let wwwroots: HashMap<i64, String> = hosts.into_iter().map(|h| (h.id, h.wwwroot)).collect();
        let users = found
            .into_iter()
            .map(|user| FoundUser {
                host: wwwroots.get(&user.mnethostid).cloned().unwrap_or_default(),
                local: Some(user.mnethostid) == local,
                exact,
                user,
            })
            .collect();
        Ok(UserSearch { users, truncated })
    }

    /// Exact matches, each through an index of Moodle's: the primary key, `(mnethostid,
    /// username)` narrowed by the hosts, `email`, `idnumber`. Empty values never match.
    fn exact_users(
        &self,
        conn: &mut DbConnection,
        text: &str,
        hosts: &[i64],
    ) -> Result<Vec<User>, SourceError> {
        let backend = query::backend(conn);
        let id = text.parse::<i64>().unwrap_or(-1);
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM {} WHERE deleted = 0 AND (id = $1 OR ({} AND username = $2) \
             OR email = $2 OR idnumber = $2) LIMIT {}",
            self.t("user"),
            in_list(backend, "mnethostid", 3),
            MAX_MATCHES
        );
        let binds = vec![
            Bind::Int(id),
            Bind::Text(text.to_owned()),
            Bind::IntList(hosts.to_vec()),
        ];
        let rows: Vec<RawUser> = query::load(conn, &sql, binds)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Up to `cap` users whose full name contains `text`, ignoring case. No ORDER BY: the scan
    /// stops at the `cap`th match instead of reading every row to sort them.
    fn users_named(
        &self,
        conn: &mut DbConnection,
        text: &str,
        cap: usize,
    ) -> Result<Vec<User>, SourceError> {
        let backend = query::backend(conn);
        let condition = match backend {
            // `lower() LIKE` reads a large table faster than ILIKE does, and folds the same case.
            Backend::Postgres => format!("lower({}) LIKE $1 ESCAPE '!'", full_name(backend)),
            Backend::Sqlite | Backend::Mysql => like(backend, full_name(backend), 1),
        };
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM {} WHERE deleted = 0 AND {condition} LIMIT {cap}",
            self.t("user"),
        );
        let pattern = contains_pattern(&text.to_lowercase());
        let rows: Vec<RawUser> = query::load(conn, &sql, vec![Bind::Text(pattern)])?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// The course index: courses (not the front page) whose short name, full name or idnumber
    /// contains `search` (all when empty), ordered by `order`, `per_page` from `offset`, each
    /// with its number of learners. Three statements whatever the number of courses.
    pub fn course_index(
        &self,
        conn: &mut DbConnection,
        search: &str,
        order: CourseOrder,
        offset: i64,
        per_page: i64,
    ) -> Result<CoursePage, SourceError> {
        let backend = query::backend(conn);
        let search = search.trim();
        let (filter, binds) = if search.is_empty() {
            (String::new(), vec![])
        } else {
            let any: Vec<String> = ["shortname", "fullname", "COALESCE(idnumber, '')"]
                .iter()
                .map(|c| like(backend, c, 1))
                .collect();
            (
                format!(" AND ({})", any.join(" OR ")),
                vec![Bind::Text(contains_pattern(search))],
            )
        };
        let course = self.t("course");
        let matching: Vec<CourseId> = query::load(
            conn,
            &format!("SELECT id, shortname, fullname FROM {course} WHERE category <> 0{filter}"),
            binds,
        )?;
        let total = matching.len() as i64;
        let ids: Vec<i64> = matching.iter().map(|c| c.id).collect();
        let learners = self.learner_counts(conn, &ids)?;
        let mut ordered = matching;
        let count = |id: i64| learners.get(&id).copied().unwrap_or(0);
        match order {
            CourseOrder::ShortName => ordered.sort_by(|a, b| {
                (a.shortname.to_lowercase(), a.id).cmp(&(b.shortname.to_lowercase(), b.id))
            }),
            CourseOrder::FullName => ordered.sort_by(|a, b| {
                (a.fullname.to_lowercase(), a.id).cmp(&(b.fullname.to_lowercase(), b.id))
            }),
            CourseOrder::Learners => {
                ordered.sort_by(|a, b| (count(b.id), a.id).cmp(&(count(a.id), b.id)))
            }
            CourseOrder::Id => ordered.sort_by_key(|c| c.id),
        }
        let page: Vec<i64> = ordered
            .iter()
            .skip(usize::try_from(offset.max(0)).unwrap_or(usize::MAX))
            .take(usize::try_from(per_page.max(0)).unwrap_or(0))
            .map(|c| c.id)
            .collect();
        let mut rows = self.courses_by_ids(conn, &page)?;
        let courses = page
            .iter()
            .filter_map(|id| rows.remove(id))
            .map(|course| IndexedCourse {
                learners: count(course.id),
                course,
            })
            .collect();
        Ok(CoursePage { courses, total })
    }

    /// Active learners (E6) per course, for `courses`: one statement over their enrolments.
    pub fn learner_counts(
        &self,
        conn: &mut DbConnection,
        courses: &[i64],
    ) -> Result<HashMap<i64, i64>, SourceError> {
        if courses.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<CourseCount> = query::load(
            conn,
            &format!(
                "SELECT e.courseid AS courseid, COUNT(DISTINCT ue.userid) AS n FROM {} ue \
                 JOIN {} e ON e.id = ue.enrolid JOIN {} u ON u.id = ue.userid \
                 WHERE {} AND ue.status = 0 AND e.status = 0 AND u.deleted = 0 \
                 GROUP BY e.courseid",
                self.t("user_enrolments"),
                self.t("enrol"),
                self.t("user"),
                in_list(query::backend(conn), "e.courseid", 1)
            ),
            vec![Bind::IntList(courses.to_vec())],
        )?;
        Ok(rows.into_iter().map(|r| (r.courseid, r.n)).collect())
    }

    /// How many users (not deleted) the source holds.
    pub fn user_count(&self, conn: &mut DbConnection) -> Result<i64, SourceError> {
        let rows: Vec<Count> = query::load(
            conn,
            &format!(
                "SELECT COUNT(*) AS n FROM {} WHERE deleted = 0",
                self.t("user")
            ),
            vec![],
        )?;
        Ok(rows.first().map_or(0, |r| r.n))
    }
}

fn by_name(a: &User, b: &User) -> std::cmp::Ordering {
    (a.lastname.to_lowercase(), a.firstname.to_lowercase(), a.id).cmp(&(
        b.lastname.to_lowercase(),
        b.firstname.to_lowercase(),
        b.id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_like_characters() {
        assert_eq!(contains_pattern("brown"), "%brown%");
        assert_eq!(contains_pattern("50%_a!"), "%50!%!_a!!%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
