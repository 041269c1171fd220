//! Read side of the Moodle-shaped source database.
//!
//! Everything here is a SELECT with bound values. Table names carry the configured prefix
//! (validated once in [`Source::new`]); the only other identifier ever put into SQL text is a
//! module type name read from `{prefix}modules`, validated before use.

use std::collections::HashMap;

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryResult, QueryableByName};

use crate::store::DbConnection;

mod query;
mod schema;

pub(crate) use query::{Backend, backend as backend_of};
use query::{Bind, in_list, text_eq};
pub(crate) use schema::{LOGSTORE_INDEX_NAME, LOGSTORE_INDEX_VERSION, migration_sql};
pub use schema::{migrate_source, validate_prefix};

pub const CONTEXT_SYSTEM: i64 = 10;
pub const CONTEXT_USER: i64 = 30;
pub const CONTEXT_COURSECAT: i64 = 40;
pub const CONTEXT_COURSE: i64 = 50;
pub const CONTEXT_MODULE: i64 = 70;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "invalid table prefix {0:?}: use a lower-case letter, then [a-z0-9_], at most 20 characters"
    )]
    InvalidPrefix(String),
    #[error("source schema migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: diesel::result::Error,
    },
    #[error("source database query failed: {0}")]
    Query(#[from] diesel::result::Error),
}

use crate::config::normalize_wwwroot;
pub use crate::stats::{LogRow, ModuleInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Id,
    Username,
    IdNumber,
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourseField {
    Id,
    IdNumber,
    ShortName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub mnethostid: i64,
    pub firstname: String,
    pub lastname: String,
    pub idnumber: String,
    pub email: String,
    pub deleted: bool,
    pub suspended: bool,
}

#[derive(QueryableByName)]
struct RawUser {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = BigInt)]
    mnethostid: i64,
    #[diesel(sql_type = Text)]
    firstname: String,
    #[diesel(sql_type = Text)]
    lastname: String,
    #[diesel(sql_type = Text)]
    idnumber: String,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = BigInt)]
    deleted: i64,
    #[diesel(sql_type = BigInt)]
    suspended: i64,
}

impl From<RawUser> for User {
    fn from(r: RawUser) -> Self {
        User {
            id: r.id,
            username: r.username,
            mnethostid: r.mnethostid,
            firstname: r.firstname,
            lastname: r.lastname,
            idnumber: r.idnumber,
            email: r.email,
            deleted: r.deleted != 0,
            suspended: r.suspended != 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Course {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub category: i64,
    #[diesel(sql_type = Text)]
    pub fullname: String,
    #[diesel(sql_type = Text)]
    pub shortname: String,
    #[diesel(sql_type = Text)]
    pub idnumber: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLabel {
    /// Instance name from the module's own table; empty when the instance row is missing.
    pub name: String,
    /// `modules.name`, e.g. `quiz`.
    pub modname: String,
    /// `course_modules.idnumber`; empty when NULL.
    pub idnumber: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnetHost {
    pub id: i64,
    pub wwwroot: String,
    pub name: String,
    pub deleted: bool,
}

#[derive(QueryableByName)]
struct RawHost {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    wwwroot: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    deleted: i64,
}

impl From<RawHost> for MnetHost {
    fn from(r: RawHost) -> Self {
        MnetHost {
            id: r.id,
            wwwroot: r.wwwroot,
            name: r.name,
            deleted: r.deleted != 0,
        }
    }
}

/// Pads a decimal text to the five fraction digits Moodle prints for number(10,5).
fn moodle_decimal(text: &str) -> String {
    let t = text.trim();
    match t.find('.') {
        Some(dot) => {
            let frac = t.len() - dot - 1;
            if frac >= 5 {
                t.to_owned()
            } else {
                format!("{t}{}", "0".repeat(5 - frac))
            }
        }
        None => format!("{t}.00000"),
    }
}

fn grade_text(backend: Backend, column: &str) -> String {
    match backend {
        // SQLite keeps NUMERIC as REAL or INTEGER; printf renders it the way Moodle does.
        Backend::Sqlite => {
            format!("CASE WHEN {column} IS NULL THEN NULL ELSE printf('%.5f', {column}) END")
        }
        // numeric(10,5) already prints with five decimals.
        Backend::Postgres => format!("CAST({column} AS TEXT)"),
        // DECIMAL(10,5) as well.
        Backend::Mysql => format!("CAST({column} AS CHAR)"),
    }
}

/// The WHERE condition and bound value that find `value` in `column` (`id` or a text column).
/// None when nothing can match: an empty value, or an id that is not a number.
fn lookup_condition(backend: Backend, column: &str, value: &str) -> Option<(String, Bind)> {
    if value.is_empty() {
        return None;
    }
    if column == "id" {
        let id = value.parse::<i64>().ok()?;
        return Some(("id = $1".to_string(), Bind::Int(id)));
    }
    Some((text_eq(backend, column, 1), Bind::Text(value.to_owned())))
}

fn valid_modname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[derive(QueryableByName)]
struct RawLog {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    userid: i64,
    #[diesel(sql_type = BigInt)]
    timecreated: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    courseid: Option<i64>,
    #[diesel(sql_type = BigInt)]
    contextlevel: i64,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Nullable<Text>)]
    origin: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    realuserid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    ctx_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    ctx_instanceid: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    cm_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    modname: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    cm_section: Option<i64>,
}

impl From<RawLog> for LogRow {
    fn from(r: RawLog) -> Self {
        let module = if r.contextlevel != CONTEXT_MODULE {
            ModuleInfo::NotModule
        } else if r.ctx_id.is_none() {
            ModuleInfo::ContextGone
        } else {
            let cm_exists = r.cm_id.is_some();
            ModuleInfo::Cm {
                cmid: r.ctx_instanceid.unwrap_or(0),
                module: if cm_exists { r.modname } else { None },
                section: if cm_exists { r.cm_section } else { None },
            }
        };
        LogRow {
            id: r.id,
            userid: r.userid,
            time: r.timecreated,
            course: r.courseid,
            context_level: r.contextlevel,
            action: r.action,
            target: r.target,
            origin: r.origin,
            realuserid: r.realuserid,
            module,
        }
    }
}

#[derive(QueryableByName)]
struct OneInt {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(QueryableByName)]
struct OneText {
    #[diesel(sql_type = Text)]
    v: String,
}

#[derive(QueryableByName)]
struct KeyValue {
    #[diesel(sql_type = BigInt)]
    k: i64,
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(QueryableByName)]
struct UserKeyValue {
    #[diesel(sql_type = BigInt)]
    u: i64,
    #[diesel(sql_type = BigInt)]
    k: i64,
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(QueryableByName)]
struct GradeRow {
    #[diesel(sql_type = BigInt)]
    k: i64,
    #[diesel(sql_type = Nullable<Text>)]
    finalgrade: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    rawgrade: Option<String>,
}

#[derive(QueryableByName)]
struct UserGradeRow {
    #[diesel(sql_type = BigInt)]
    u: i64,
    #[diesel(sql_type = BigInt)]
    k: i64,
    #[diesel(sql_type = Nullable<Text>)]
    finalgrade: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    rawgrade: Option<String>,
}

/// D9/E10: finalgrade, else rawgrade.
fn course_score(finalgrade: Option<String>, rawgrade: Option<String>) -> Option<String> {
    finalgrade.or(rawgrade).map(|g| moodle_decimal(&g))
}

impl GradeRow {
    fn score(self) -> Option<String> {
        course_score(self.finalgrade, self.rawgrade)
    }
}

#[derive(QueryableByName)]
struct CmRow {
    #[diesel(sql_type = BigInt)]
    cmid: i64,
    #[diesel(sql_type = BigInt)]
    instance: i64,
    #[diesel(sql_type = Nullable<Text>)]
    idnumber: Option<String>,
    #[diesel(sql_type = Text)]
    modname: String,
}

#[derive(QueryableByName)]
struct InstanceName {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

/// Filters of spec §2.1 that can be decided in SQL, with D10's reading of NULL origin.
/// `courseid <> 0 OR (courseid = 0 AND …)` drops NULL courseids, as Moodle's query does.
/// Users per log query of a batch on MySQL (see [`Source::for_each_users_log`]).
const MYSQL_USERS_PER_SCAN: usize = 50;

const LOG_FILTERS: &str = "l.timecreated >= $2 AND l.timecreated <= $3 \
     AND (l.origin IS NULL OR l.origin <> 'cli') \
     AND l.action <> 'failed' \
     AND (l.courseid <> 0 OR (l.courseid = 0 AND l.action IN ('loggedin', 'loggedout'))) \
     AND l.realuserid IS NULL";

const USER_COLUMNS: &str = "id, username, mnethostid, firstname, lastname, \
     COALESCE(idnumber, '') AS idnumber, COALESCE(email, '') AS email, \
     CAST(deleted AS BIGINT) AS deleted, CAST(suspended AS BIGINT) AS suspended";

const COURSE_COLUMNS: &str =
    "id, category, fullname, shortname, COALESCE(idnumber, '') AS idnumber";

/// Handle on the source tables under one prefix. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct Source {
    prefix: String,
}

impl Source {
    pub fn new(prefix: &str) -> Result<Self, SourceError> {
        validate_prefix(prefix)?;
        Ok(Source {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn t(&self, table: &str) -> String {
        format!("{}{}", self.prefix, table)
    }

    /// `config.mnet_localhost_id`, the id of this site's own `mnet_host` row.
    pub fn local_mnet_host_id(&self, conn: &mut DbConnection) -> Result<Option<i64>, SourceError> {
        let rows: Vec<OneText> = query::load(
            conn,
            &format!(
                "SELECT value AS v FROM {} WHERE name = $1",
                self.t("config")
            ),
            vec![Bind::Text("mnet_localhost_id".into())],
        )?;
        Ok(rows.first().and_then(|r| r.v.trim().parse().ok()))
    }

    /// The non-deleted host whose wwwroot equals `wwwroot` once both are normalised (D13).
    /// The table is small (one row per peer), so the comparison runs here, not in SQL.
    pub fn mnet_host_id_by_wwwroot(
        &self,
        conn: &mut DbConnection,
        wwwroot: &str,
    ) -> Result<Option<i64>, SourceError> {
        let wanted = normalize_wwwroot(wwwroot);
        if wanted.is_empty() {
            // The "All Hosts" pseudo-host has an empty wwwroot; nobody calls from there.
            return Ok(None);
        }
        Ok(self
            .mnet_hosts(conn)?
            .into_iter()
            .find(|h| !h.deleted && normalize_wwwroot(&h.wwwroot) == wanted)
            .map(|h| h.id))
    }

    pub fn mnet_host(
        &self,
        conn: &mut DbConnection,
        id: i64,
    ) -> Result<Option<MnetHost>, SourceError> {
        let rows: Vec<RawHost> = query::load(
            conn,
            &format!(
                "SELECT id, wwwroot, name, CAST(deleted AS BIGINT) AS deleted FROM {} WHERE id = $1",
                self.t("mnet_host")
            ),
            vec![Bind::Int(id)],
        )?;
        Ok(rows.into_iter().next().map(Into::into))
    }

    pub fn mnet_hosts(&self, conn: &mut DbConnection) -> Result<Vec<MnetHost>, SourceError> {
        let rows: Vec<RawHost> = query::load(
            conn,
            &format!(
                "SELECT id, wwwroot, name, CAST(deleted AS BIGINT) AS deleted FROM {} ORDER BY id",
                self.t("mnet_host")
            ),
            vec![],
        )?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The front-page course: the course in category 0, or 1 when there is none (SITEID).
    pub fn site_course_id(&self, conn: &mut DbConnection) -> Result<i64, SourceError> {
        let rows: Vec<OneInt> = query::load(
            conn,
            &format!(
                "SELECT id AS v FROM {} WHERE category = 0 ORDER BY id LIMIT 1",
                self.t("course")
            ),
            vec![],
        )?;
        Ok(rows.first().map_or(1, |r| r.v))
    }

    /// First non-deleted user (lowest id) whose `field` equals `value`. An empty value, or an id
    /// that is not a number, finds nobody: many rows have an empty idnumber or email.
    pub fn find_user(
        &self,
        conn: &mut DbConnection,
        field: UserField,
        value: &str,
    ) -> Result<Option<User>, SourceError> {
        let column = match field {
            UserField::Id => "id",
            UserField::Username => "username",
            UserField::IdNumber => "idnumber",
            UserField::Email => "email",
        };
        let Some((condition, bind)) = lookup_condition(query::backend(conn), column, value) else {
            return Ok(None);
        };
        let rows: Vec<RawUser> = query::load(
            conn,
            &format!(
                "SELECT {USER_COLUMNS} FROM {} WHERE {condition} AND deleted = 0 \
                 ORDER BY id LIMIT 1",
                self.t("user")
            ),
            vec![bind],
        )?;
        Ok(rows.into_iter().next().map(Into::into))
    }

    /// Target user of an MNET call, named by username only: several hosts can share one
    /// username, so the local host's account wins, then the lowest id (B17).
    pub fn find_user_for_rpc(
        &self,
        conn: &mut DbConnection,
        username: &str,
    ) -> Result<Option<User>, SourceError> {
        if username.is_empty() {
            return Ok(None);
        }
        let local = self.local_mnet_host_id(conn)?.unwrap_or(-1);
        let rows: Vec<RawUser> = query::load(
            conn,
            &format!(
                "SELECT {USER_COLUMNS} FROM {} WHERE {} AND deleted = 0 \
                 ORDER BY CASE WHEN mnethostid = $2 THEN 0 ELSE 1 END, id LIMIT 1",
                self.t("user"),
                text_eq(query::backend(conn), "username", 1)
            ),
            vec![Bind::Text(username.to_owned()), Bind::Int(local)],
        )?;
        Ok(rows.into_iter().next().map(Into::into))
    }

    /// The local account of a person from host `mnethostid` (spec §1.3 step 5). Deleted
    /// accounts are never returned; `suspended` is left for the caller to judge.
    pub fn find_mnet_user(
        &self,
        conn: &mut DbConnection,
        username: &str,
        mnethostid: i64,
    ) -> Result<Option<User>, SourceError> {
        if username.is_empty() {
            return Ok(None);
        }
        let rows: Vec<RawUser> = query::load(
            conn,
            &format!(
                "SELECT {USER_COLUMNS} FROM {} WHERE {} AND mnethostid = $2 \
                 AND deleted = 0 ORDER BY id LIMIT 1",
                self.t("user"),
                text_eq(query::backend(conn), "username", 1)
            ),
            vec![Bind::Text(username.to_owned()), Bind::Int(mnethostid)],
        )?;
        Ok(rows.into_iter().next().map(Into::into))
    }

    /// First course (lowest id) whose `field` equals `value`; empty or non-numeric ids find none.
    pub fn find_course(
        &self,
        conn: &mut DbConnection,
        field: CourseField,
        value: &str,
    ) -> Result<Option<Course>, SourceError> {
        let column = match field {
            CourseField::Id => "id",
            CourseField::IdNumber => "idnumber",
            CourseField::ShortName => "shortname",
        };
        let Some((condition, bind)) = lookup_condition(query::backend(conn), column, value) else {
            return Ok(None);
        };
        let rows: Vec<Course> = query::load(
            conn,
            &format!(
                "SELECT {COURSE_COLUMNS} FROM {} WHERE {condition} ORDER BY id LIMIT 1",
                self.t("course")
            ),
            vec![bind],
        )?;
        Ok(rows.into_iter().next())
    }

    pub fn courses_by_ids(
        &self,
        conn: &mut DbConnection,
        ids: &[i64],
    ) -> Result<HashMap<i64, Course>, SourceError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<Course> = query::load(
            conn,
            &format!(
                "SELECT {COURSE_COLUMNS} FROM {} WHERE {}",
                self.t("course"),
                in_list(query::backend(conn), "id", 1)
            ),
            vec![Bind::IntList(ids.to_vec())],
        )?;
        Ok(rows.into_iter().map(|c| (c.id, c)).collect())
    }

    /// Labels for course modules. A cmid whose course_modules row (or module type) is gone is
    /// left out: the caller shows it as `N.C.` (E14).
    pub fn module_labels(
        &self,
        conn: &mut DbConnection,
        cmids: &[i64],
    ) -> Result<HashMap<i64, ModuleLabel>, SourceError> {
        let mut out = HashMap::new();
        if cmids.is_empty() {
            return Ok(out);
        }
        let backend = query::backend(conn);
        let cms: Vec<CmRow> = query::load(
            conn,
            &format!(
                "SELECT cm.id AS cmid, cm.instance AS instance, cm.idnumber AS idnumber, \
                 m.name AS modname FROM {} cm JOIN {} m ON m.id = cm.module WHERE {}",
                self.t("course_modules"),
                self.t("modules"),
                in_list(backend, "cm.id", 1)
            ),
            vec![Bind::IntList(cmids.to_vec())],
        )?;
        let mut by_type: HashMap<String, Vec<&CmRow>> = HashMap::new();
        for cm in &cms {
            by_type.entry(cm.modname.clone()).or_default().push(cm);
        }
        for (modname, list) in by_type {
            let names: HashMap<i64, String> = if valid_modname(&modname) {
                let instances: Vec<i64> = list.iter().map(|cm| cm.instance).collect();
                let rows: QueryResult<Vec<InstanceName>> = query::load(
                    conn,
                    &format!(
                        "SELECT id, name FROM {} WHERE {}",
                        self.t(&modname),
                        in_list(backend, "id", 1)
                    ),
                    vec![Bind::IntList(instances)],
                );
                match rows {
                    Ok(rows) => rows.into_iter().map(|r| (r.id, r.name)).collect(),
                    // A module table we may not read (a read-only role granted on a few
                    // tables) costs that module its name, not the whole answer.
                    Err(e) => {
                        tracing::warn!(modname = %modname, error = %e, "module instance names unreadable; left empty");
                        HashMap::new()
                    }
                }
            } else {
                tracing::warn!(modname = %modname, "module type name unfit for SQL; instance names left empty");
                HashMap::new()
            };
            for cm in list {
                out.insert(
                    cm.cmid,
                    ModuleLabel {
                        name: names.get(&cm.instance).cloned().unwrap_or_default(),
                        modname: modname.clone(),
                        idnumber: cm.idnumber.clone().unwrap_or_default(),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Per course, the earliest `timestart` of the user's active enrolments (E6): both the
    /// user_enrolments row and its enrol instance must have status 0.
    pub fn enrolment_starts(
        &self,
        conn: &mut DbConnection,
        userid: i64,
    ) -> Result<HashMap<i64, i64>, SourceError> {
        let rows: Vec<KeyValue> = query::load(
            conn,
            &format!(
                "SELECT e.courseid AS k, MIN(ue.timestart) AS v FROM {} ue JOIN {} e ON e.id = ue.enrolid \
                 WHERE ue.userid = $1 AND ue.status = 0 AND e.status = 0 GROUP BY e.courseid",
                self.t("user_enrolments"),
                self.t("enrol")
            ),
            vec![Bind::Int(userid)],
        )?;
        Ok(rows.into_iter().map(|r| (r.k, r.v)).collect())
    }

    /// [`Source::enrolment_starts`] for many users in one query: userid → course → start.
    pub fn enrolment_starts_for_users(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
    ) -> Result<HashMap<i64, HashMap<i64, i64>>, SourceError> {
        let mut out: HashMap<i64, HashMap<i64, i64>> = HashMap::new();
        if userids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<UserKeyValue> = query::load(
            conn,
            &format!(
                "SELECT ue.userid AS u, e.courseid AS k, MIN(ue.timestart) AS v FROM {} ue \
                 JOIN {} e ON e.id = ue.enrolid \
                 WHERE {} AND ue.status = 0 AND e.status = 0 GROUP BY ue.userid, e.courseid",
                self.t("user_enrolments"),
                self.t("enrol"),
                in_list(query::backend(conn), "ue.userid", 1)
            ),
            vec![Bind::IntList(userids.to_vec())],
        )?;
        for r in rows {
            out.entry(r.u).or_default().insert(r.k, r.v);
        }
        Ok(out)
    }

    /// `keys` is the leading select list (`gi.courseid AS k`, …), so each caller reads the
    /// key columns its row type wants while the rule for "the course item" stays in one place.
    fn course_item_sql(&self, backend: Backend, keys: &str, user_cond: &str) -> String {
        format!(
            "SELECT {keys}, {} AS finalgrade, {} AS rawgrade \
             FROM {} gg JOIN {} gi ON gi.id = gg.itemid \
             WHERE {user_cond} AND gi.itemtype = 'course' AND gi.id = \
             (SELECT MIN(g2.id) FROM {} g2 WHERE g2.courseid = gi.courseid AND g2.itemtype = 'course')",
            grade_text(backend, "gg.finalgrade"),
            grade_text(backend, "gg.rawgrade"),
            self.t("grade_grades"),
            self.t("grade_items"),
            self.t("grade_items"),
        )
    }

    /// The user's course-total grade as Moodle prints number(10,5) (`"72.50000"`): finalgrade,
    /// else rawgrade; None when the course has no course item, the user has no grade row, or
    /// both values are NULL (D9, E10). Only this user's row is read (B21).
    pub fn course_grade(
        &self,
        conn: &mut DbConnection,
        userid: i64,
        courseid: i64,
    ) -> Result<Option<String>, SourceError> {
        let sql = self.course_item_sql(
            query::backend(conn),
            "gi.courseid AS k",
            "gg.userid = $1 AND gi.courseid = $2",
        );
        let rows: Vec<GradeRow> =
            query::load(conn, &sql, vec![Bind::Int(userid), Bind::Int(courseid)])?;
        Ok(rows.into_iter().next().and_then(GradeRow::score))
    }

    /// Every course-total grade of one user: course id → grade, courses without one left out.
    pub fn user_course_grades(
        &self,
        conn: &mut DbConnection,
        userid: i64,
    ) -> Result<HashMap<i64, String>, SourceError> {
        let sql = self.course_item_sql(query::backend(conn), "gi.courseid AS k", "gg.userid = $1");
        let rows: Vec<GradeRow> = query::load(conn, &sql, vec![Bind::Int(userid)])?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let k = r.k;
                r.score().map(|s| (k, s))
            })
            .collect())
    }

    /// The course-total grade of many users in one course: user id → grade.
    pub fn users_course_grades(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        courseid: i64,
    ) -> Result<HashMap<i64, String>, SourceError> {
        if userids.is_empty() {
            return Ok(HashMap::new());
        }
        let backend = query::backend(conn);
        let cond = format!("{} AND gi.courseid = $2", in_list(backend, "gg.userid", 1));
        let sql = self.course_item_sql(backend, "gg.userid AS k", &cond);
        let rows: Vec<GradeRow> = query::load(
            conn,
            &sql,
            vec![Bind::IntList(userids.to_vec()), Bind::Int(courseid)],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let k = r.k;
                r.score().map(|s| (k, s))
            })
            .collect())
    }

    /// Every course-total grade of many users in one query: (user id, course id) → grade.
    /// The id list is one bound parameter, so thousands of users cost one round trip instead
    /// of one [`Source::user_course_grades`] query each.
    pub fn grades_for_users(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
    ) -> Result<HashMap<(i64, i64), String>, SourceError> {
        if userids.is_empty() {
            return Ok(HashMap::new());
        }
        let backend = query::backend(conn);
        let sql = self.course_item_sql(
            backend,
            "gg.userid AS u, gi.courseid AS k",
            &in_list(backend, "gg.userid", 1),
        );
        let rows: Vec<UserGradeRow> =
            query::load(conn, &sql, vec![Bind::IntList(userids.to_vec())])?;
        Ok(rows
            .into_iter()
            .filter_map(|r| course_score(r.finalgrade, r.rawgrade).map(|s| ((r.u, r.k), s)))
            .collect())
    }

    fn log_sql(&self, user_cond: &str, order: &str) -> String {
        format!(
            "SELECT l.id AS id, l.userid AS userid, l.timecreated AS timecreated, \
             l.courseid AS courseid, l.contextlevel AS contextlevel, l.action AS action, \
             l.target AS target, l.origin AS origin, l.realuserid AS realuserid, \
             ctx.id AS ctx_id, ctx.instanceid AS ctx_instanceid, cm.id AS cm_id, \
             m.name AS modname, cm.section AS cm_section \
             FROM {log} l \
             LEFT JOIN {ctx} ctx ON l.contextlevel = {CONTEXT_MODULE} AND ctx.id = l.contextid \
             LEFT JOIN {cm} cm ON cm.id = ctx.instanceid \
             LEFT JOIN {m} m ON m.id = cm.module \
             WHERE {user_cond} AND {LOG_FILTERS} \
             ORDER BY {order}",
            log = self.t("logstore_standard_log"),
            ctx = self.t("context"),
            cm = self.t("course_modules"),
            m = self.t("modules"),
        )
    }

    /// One user's extracted log over `[from, to]` (both inclusive), ordered by (time, id),
    /// handed to `f` row by row without buffering. Returns the number of rows.
    pub fn for_each_user_log(
        &self,
        conn: &mut DbConnection,
        userid: i64,
        from: i64,
        to: i64,
        mut f: impl FnMut(LogRow),
    ) -> Result<u64, SourceError> {
        let sql = self.log_sql("l.userid = $1", "l.timecreated, l.id");
        Ok(stream_logs(
            conn,
            &sql,
            vec![Bind::Int(userid), Bind::Int(from), Bind::Int(to)],
            &mut f,
        )?)
    }

    /// Many users' logs in one scan, ordered by (userid, time, id): each user's rows arrive
    /// together, in the same order [`Source::for_each_user_log`] gives them. The id list is one
    /// bound parameter (a PostgreSQL array, a JSON array on SQLite), so any number of users is
    /// fine. PostgreSQL may choose a bitmap scan plus a server-side sort, which stays within
    /// `work_mem` (spilling to disk past it); rows still reach us one at a time.
    pub fn for_each_users_log(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        from: i64,
        to: i64,
        mut f: impl FnMut(LogRow),
    ) -> Result<u64, SourceError> {
        if userids.is_empty() {
            return Ok(0);
        }
        let backend = query::backend(conn);
        let cond = in_list(backend, "l.userid", 1);
        let sql = self.log_sql(&cond, "l.userid, l.timecreated, l.id");
        // The MySQL client library holds a query's whole result before the first row is
        // read, so there the users go in groups, in id order: memory stays bounded by one
        // group's rows and the rows still arrive ordered by (userid, time, id).
        let groups: Vec<Vec<i64>> = if backend == Backend::Mysql {
            let mut sorted = userids.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            sorted
                .chunks(MYSQL_USERS_PER_SCAN)
                .map(<[i64]>::to_vec)
                .collect()
        } else {
            vec![userids.to_vec()]
        };
        let mut rows = 0;
        for group in groups {
            rows += stream_logs(
                conn,
                &sql,
                vec![Bind::IntList(group), Bind::Int(from), Bind::Int(to)],
                &mut f,
            )?;
        }
        Ok(rows)
    }
}

fn stream_logs(
    conn: &mut DbConnection,
    sql: &str,
    binds: Vec<Bind>,
    f: &mut dyn FnMut(LogRow),
) -> QueryResult<u64> {
    query::stream::<RawLog, _>(conn, sql, binds, |raw| f(raw.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_padded_like_moodle() {
        assert_eq!(moodle_decimal("72.5"), "72.50000");
        assert_eq!(moodle_decimal("72.50000"), "72.50000");
        assert_eq!(moodle_decimal("80"), "80.00000");
        assert_eq!(moodle_decimal("-3.25"), "-3.25000");
    }

    #[test]
    fn modnames() {
        assert!(valid_modname("learningtimecheck"));
        assert!(valid_modname("h5pactivity"));
        assert!(!valid_modname(""));
        assert!(!valid_modname("quiz; DROP"));
        assert!(!valid_modname("Quiz"));
    }
}
