//! Courses, their modules' labels and users' enrolment starts.

use std::collections::HashMap;

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryResult, QueryableByName};

use super::query::{self, Bind, in_list};
use super::{LogText, Source, SourceError, lookup_condition};
use crate::store::DbConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourseField {
    Id,
    IdNumber,
    ShortName,
}

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
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

fn valid_modname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[derive(QueryableByName)]
struct OneInt {
    #[diesel(sql_type = BigInt)]
    v: i64,
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

const COURSE_COLUMNS: &str =
    "id, category, fullname, shortname, COALESCE(idnumber, '') AS idnumber";

impl Source {
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
}

/// How a cm resolves: its module's name and its section, both `None` when the cm row is gone.
pub type ModuleState = (Option<LogText>, Option<i64>);

impl Source {
    /// How each cm resolves now, as a log row of its context would: `None` when its context is
    /// gone; else the module name and section, both `None` when the cm row is gone. Read
    /// through the context's `(contextlevel, instanceid)` index.
    pub fn module_states(
        &self,
        conn: &mut DbConnection,
        cmids: &[i64],
    ) -> Result<HashMap<i64, ModuleState>, SourceError> {
        #[derive(diesel::QueryableByName)]
        struct State {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            cmid: i64,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            cm_id: Option<i64>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            modname: Option<LogText>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            section: Option<i64>,
        }
        let mut out = HashMap::new();
        for chunk in cmids.chunks(1000) {
            let sql = format!(
                "SELECT ctx.instanceid AS cmid, cm.id AS cm_id, m.name AS modname, \
                 cm.section AS section FROM {ctx} ctx \
                 LEFT JOIN {cm} cm ON cm.id = ctx.instanceid \
                 LEFT JOIN {m} m ON m.id = cm.module \
                 WHERE ctx.contextlevel = {level} AND {list}",
                ctx = self.t("context"),
                cm = self.t("course_modules"),
                m = self.t("modules"),
                level = super::CONTEXT_MODULE,
                list = query::in_list(query::backend(conn), "ctx.instanceid", 1),
            );
            let rows: Vec<State> = query::load(conn, &sql, vec![Bind::IntList(chunk.to_vec())])?;
            for r in rows {
                let state = match r.cm_id {
                    Some(_) => (r.modname, r.section),
                    None => (None, None),
                };
                out.insert(r.cmid, state);
            }
        }
        Ok(out)
    }
}

impl Source {
    /// The earliest start date a course has (0, no date, left out); `None` when none has one.
    pub fn earliest_course_start(
        &self,
        conn: &mut DbConnection,
    ) -> Result<Option<i64>, SourceError> {
        #[derive(QueryableByName)]
        struct Earliest {
            #[diesel(sql_type = Nullable<BigInt>)]
            v: Option<i64>,
        }
        let rows: Vec<Earliest> = query::load(
            conn,
            &format!(
                "SELECT MIN(startdate) AS v FROM {} WHERE startdate <> 0",
                self.t("course")
            ),
            vec![],
        )?;
        Ok(rows.into_iter().next().and_then(|r| r.v))
    }

    /// `course.startdate` of these courses; a course absent from the answer does not exist.
    pub fn course_start_dates(
        &self,
        conn: &mut DbConnection,
        ids: &[i64],
    ) -> Result<HashMap<i64, i64>, SourceError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<KeyValue> = query::load(
            conn,
            &format!(
                "SELECT id AS k, startdate AS v FROM {} WHERE {}",
                self.t("course"),
                in_list(query::backend(conn), "id", 1)
            ),
            vec![Bind::IntList(ids.to_vec())],
        )?;
        Ok(rows.into_iter().map(|r| (r.k, r.v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modnames() {
        assert!(valid_modname("learningtimecheck"));
        assert!(valid_modname("h5pactivity"));
        assert!(!valid_modname(""));
        assert!(!valid_modname("quiz; DROP"));
        assert!(!valid_modname("Quiz"));
    }
}
