//! The log rows the dedication rules read (docs/engine.md §8): for a live answer over a window,
//! and for the compiled store (`compiled::dedication`), by id range.

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::query::{self, Bind, Size, in_list};
use super::{LogText, Source, SourceError};
use crate::stats::dedication::DedicationRow;
use crate::store::DbConnection;

/// A row as block_dedication reads it.
#[derive(QueryableByName)]
struct RawDedicationRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    userid: i64,
    #[diesel(sql_type = BigInt)]
    timecreated: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    courseid: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    origin: Option<LogText>,
    #[diesel(sql_type = Text)]
    eventname: String,
}

/// Rows per user, unordered.
pub type RowsByUser = HashMap<i64, Vec<DedicationRow>>;

impl Source {
    /// The rows of the log matching `cond` (SQL over `l`, with `binds`), per user.
    fn dedication_rows_where(
        &self,
        conn: &mut DbConnection,
        cond: &str,
        binds: Vec<Bind>,
    ) -> Result<RowsByUser, SourceError> {
        let mut out = RowsByUser::new();
        let sql = format!(
            "SELECT l.id AS id, l.userid AS userid, l.timecreated AS timecreated, \
             l.courseid AS courseid, l.origin AS origin, l.eventname AS eventname \
             FROM {} l WHERE {cond}",
            self.t("logstore_standard_log"),
        );
        query::stream::<RawDedicationRow, _>(conn, &sql, binds, Size::Unbounded, |r| {
            out.entry(r.userid).or_default().push(DedicationRow::new(
                r.id,
                r.timecreated,
                r.courseid,
                r.origin.as_deref(),
                &r.eventname,
            ));
        })?;
        Ok(out)
    }

    /// The rows the dedication rules read, per user, over `[from, to]` (both included): every
    /// row with a course (course 0 and NULL never count), of one course when `course` is
    /// given. No other filter: origin and event name are the rule's to judge
    /// ([`crate::stats::dedication::counts`]), which differ between its variants. Unordered;
    /// the rule orders by (time, id).
    pub fn users_dedication_rows(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        course: Option<i64>,
        from: i64,
        to: i64,
    ) -> Result<RowsByUser, SourceError> {
        if userids.is_empty() {
            return Ok(RowsByUser::new());
        }
        let mut binds = vec![
            Bind::IntList(sorted(userids)),
            Bind::Int(from),
            Bind::Int(to),
        ];
        let course_cond = match course {
            Some(c) => {
                binds.push(Bind::Int(c));
                "l.courseid = $4"
            }
            None => "l.courseid <> 0",
        };
        let cond = format!(
            "{} AND l.timecreated >= $2 AND l.timecreated <= $3 AND {course_cond}",
            in_list(query::backend(conn), "l.userid", 1),
        );
        self.dedication_rows_where(conn, &cond, binds)
    }

    /// Every row with a course and an id in `(after, upto]`, per user: what a compile pass adds.
    pub fn dedication_rows_in_ids(
        &self,
        conn: &mut DbConnection,
        after: i64,
        upto: i64,
    ) -> Result<RowsByUser, SourceError> {
        self.dedication_rows_where(
            conn,
            "l.id > $1 AND l.id <= $2 AND l.courseid <> 0",
            vec![Bind::Int(after), Bind::Int(upto)],
        )
    }

    /// Every row with a course and an id up to `upto` of these users: their whole history as
    /// the compiled store keeps it.
    pub fn users_dedication_rows_upto(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        upto: i64,
    ) -> Result<RowsByUser, SourceError> {
        self.users_rows_by_id(conn, userids, "l.id <= $2 AND l.courseid <> 0", upto)
    }

    /// Every row of these users with an id over `after`, with or without a course: an answer
    /// from the compiled store counts them all (the deletion check) and runs the rule on them.
    pub fn users_rows_after(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        after: i64,
    ) -> Result<RowsByUser, SourceError> {
        self.users_rows_by_id(conn, userids, "l.id > $2", after)
    }

    /// These users' rows meeting `cond`, which compares `l.id` with `id` bound at `$2`.
    fn users_rows_by_id(
        &self,
        conn: &mut DbConnection,
        userids: &[i64],
        cond: &str,
        id: i64,
    ) -> Result<RowsByUser, SourceError> {
        if userids.is_empty() {
            return Ok(RowsByUser::new());
        }
        let cond = format!(
            "{} AND {cond}",
            in_list(query::backend(conn), "l.userid", 1)
        );
        self.dedication_rows_where(
            conn,
            &cond,
            vec![Bind::IntList(sorted(userids)), Bind::Int(id)],
        )
    }
}

fn sorted(userids: &[i64]) -> Vec<i64> {
    let mut ids = userids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}
