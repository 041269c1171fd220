//! PostgreSQL's bulk path for the log: one array per column, bound as parameters and unnested
//! in a single INSERT, because its parser handles long VALUES lists about ten times slower than
//! bound arrays.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};

use super::log::Ev;
use super::site::Site;
use super::sql::{LOG_COLUMNS, ip_text, origin_name};
use crate::store::DbConnection;

/// Rows per PostgreSQL array INSERT.
pub(super) const PG_ARRAY_ROWS: usize = 10_000;

#[derive(Default)]
pub(super) struct PgLogColumns {
    table: String,
    pub(super) id: Vec<i64>,
    eventname: Vec<&'static str>,
    component: Vec<&'static str>,
    action: Vec<&'static str>,
    target: Vec<&'static str>,
    objecttable: Vec<Option<&'static str>>,
    objectid: Vec<Option<i64>>,
    crud: Vec<&'static str>,
    edulevel: Vec<i64>,
    contextid: Vec<i64>,
    contextlevel: Vec<i64>,
    contextinstanceid: Vec<i64>,
    userid: Vec<i64>,
    courseid: Vec<i64>,
    relateduserid: Vec<Option<i64>>,
    timecreated: Vec<i64>,
    origin: Vec<Option<&'static str>>,
    ip: Vec<Option<String>>,
    realuserid: Vec<Option<i64>>,
}

impl PgLogColumns {
    pub(super) fn new(table: String) -> Self {
        PgLogColumns {
            table,
            ..Default::default()
        }
    }

    pub(super) fn push(&mut self, id: i64, ev: &Ev, site: &Site, offset: i64) {
        let t = ev.tpl;
        self.id.push(id);
        self.eventname.push(t.eventname);
        self.component.push(t.component);
        self.action.push(t.action);
        self.target.push(t.target);
        self.objecttable.push(t.objecttable);
        self.objectid.push(ev.objectid);
        self.crud.push(t.crud);
        self.edulevel.push(t.edulevel);
        self.contextid.push(ev.contextid);
        self.contextlevel.push(ev.contextlevel);
        self.contextinstanceid.push(ev.contextinstanceid);
        self.userid.push(site.users[ev.user].id);
        self.courseid.push(ev.courseid);
        self.relateduserid.push(ev.relateduserid);
        self.timecreated.push(ev.time + offset);
        self.origin.push(origin_name(ev.origin));
        self.ip.push(ip_text(ev));
        self.realuserid.push(ev.realuserid);
    }

    pub(super) fn flush(&mut self, conn: &mut DbConnection) -> QueryResult<()> {
        if self.id.is_empty() {
            return Ok(());
        }
        let DbConnection::Postgres(pg) = conn else {
            return Err(diesel::result::Error::QueryBuilderError(
                "array insert needs PostgreSQL".into(),
            ));
        };
        let fresh = PgLogColumns::new(self.table.clone());
        let cols = std::mem::replace(self, fresh);
        let sql = format!(
            "INSERT INTO {} ({LOG_COLUMNS}) SELECT u.id, u.eventname, u.component, u.action, \
             u.target, u.objecttable, u.objectid, u.crud, u.edulevel, u.contextid, \
             u.contextlevel, u.contextinstanceid, u.userid, u.courseid, u.relateduserid, 0, NULL, \
             u.timecreated, u.origin, u.ip, u.realuserid \
             FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19) AS u(id, eventname, component, action, target, objecttable, \
             objectid, crud, edulevel, contextid, contextlevel, contextinstanceid, userid, \
             courseid, relateduserid, timecreated, origin, ip, realuserid)",
            cols.table
        );
        diesel::sql_query(sql)
            .bind::<Array<BigInt>, _>(cols.id)
            .bind::<Array<Text>, _>(cols.eventname)
            .bind::<Array<Text>, _>(cols.component)
            .bind::<Array<Text>, _>(cols.action)
            .bind::<Array<Text>, _>(cols.target)
            .bind::<Array<Nullable<Text>>, _>(cols.objecttable)
            .bind::<Array<Nullable<BigInt>>, _>(cols.objectid)
            .bind::<Array<Text>, _>(cols.crud)
            .bind::<Array<BigInt>, _>(cols.edulevel)
            .bind::<Array<BigInt>, _>(cols.contextid)
            .bind::<Array<BigInt>, _>(cols.contextlevel)
            .bind::<Array<BigInt>, _>(cols.contextinstanceid)
            .bind::<Array<BigInt>, _>(cols.userid)
            .bind::<Array<BigInt>, _>(cols.courseid)
            .bind::<Array<Nullable<BigInt>>, _>(cols.relateduserid)
            .bind::<Array<BigInt>, _>(cols.timecreated)
            .bind::<Array<Nullable<Text>>, _>(cols.origin)
            .bind::<Array<Nullable<Text>>, _>(cols.ip)
            .bind::<Array<Nullable<BigInt>>, _>(cols.realuserid)
            .execute(pg)?;
        Ok(())
    }
}
