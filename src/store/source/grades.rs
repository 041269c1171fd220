//! Course-total grades, read the way Moodle prints number(10,5).

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::query::{self, Backend, Bind, in_list};
use super::{Source, SourceError};
use crate::store::DbConnection;

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

impl Source {
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
}
