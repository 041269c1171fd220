//! Course groups (`groups`) and who is in them (`groups_members`), for the course report's
//! group filter. Both statements reach their rows through Moodle's own indexes:
//! `groups(courseid)` and `groups_members(groupid)`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};

use super::query::{self, Bind};
use super::{Source, SourceError};
use crate::store::DbConnection;

/// A group of a course, as its teachers named it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
pub struct Group {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub courseid: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub idnumber: String,
}

#[derive(QueryableByName)]
struct Member {
    #[diesel(sql_type = BigInt)]
    userid: i64,
}

impl Source {
    /// The groups of a course, by name (then id, as two groups may share a name).
    pub fn course_groups(
        &self,
        conn: &mut DbConnection,
        courseid: i64,
    ) -> Result<Vec<Group>, SourceError> {
        Ok(query::load(
            conn,
            &format!(
                "SELECT id, courseid, name, COALESCE(idnumber, '') AS idnumber FROM {} \
                 WHERE courseid = $1 ORDER BY name, id",
                self.t("groups")
            ),
            vec![Bind::Int(courseid)],
        )?)
    }

    /// The users in a group, by id. Moodle keeps one row per (user, group); the DISTINCT only
    /// guards a copy that lost that unique index.
    pub fn group_members(
        &self,
        conn: &mut DbConnection,
        groupid: i64,
    ) -> Result<Vec<i64>, SourceError> {
        let rows: Vec<Member> = query::load(
            conn,
            &format!(
                "SELECT DISTINCT userid FROM {} WHERE groupid = $1 ORDER BY userid",
                self.t("groups_members")
            ),
            vec![Bind::Int(groupid)],
        )?;
        Ok(rows.into_iter().map(|m| m.userid).collect())
    }
}
