//! Users of the source site, and the MNET hosts they come from: lookups by a chosen field,
//! by the username an MNET call names, and by (username, home host).

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};

use super::query::{self, Bind, text_eq};
use super::{Source, SourceError, lookup_condition};
use crate::store::DbConnection;
use crate::wwwroot::Wwwroot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    Id,
    Username,
    IdNumber,
    Email,
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
pub(super) struct RawUser {
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

#[derive(QueryableByName)]
struct OneText {
    #[diesel(sql_type = Text)]
    v: String,
}

pub(super) const USER_COLUMNS: &str = "id, username, mnethostid, firstname, lastname, \
     COALESCE(idnumber, '') AS idnumber, COALESCE(email, '') AS email, \
     CAST(deleted AS BIGINT) AS deleted, CAST(suspended AS BIGINT) AS suspended";

impl Source {
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
        let wanted = Wwwroot::normalized(wwwroot);
        if wanted.is_empty() {
            // The "All Hosts" pseudo-host has an empty wwwroot; nobody calls from there.
            return Ok(None);
        }
        Ok(self
            .mnet_hosts(conn)?
            .into_iter()
            .find(|h| !h.deleted && Wwwroot::normalized(&h.wwwroot) == wanted)
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
        if field == UserField::Username {
            if value.is_empty() {
                return Ok(None);
            }
            let hosts = self.mnet_host_ids(conn)?;
            return self.first_by_username(conn, value, &hosts);
        }
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

    /// [`Source::find_user`] for many values at once, in their order: a few statements
    /// whatever their number (lists of up to 500 values each), so that an answer for
    /// thousands of users does not look each one up on its own.
    pub fn find_users(
        &self,
        conn: &mut DbConnection,
        field: UserField,
        values: &[String],
    ) -> Result<Vec<Option<User>>, SourceError> {
        let column = match field {
            UserField::Id => "id",
            UserField::Username => "username",
            UserField::IdNumber => "idnumber",
            UserField::Email => "email",
        };
        let mut wanted: Vec<&str> = values
            .iter()
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .filter(|v| field != UserField::Id || v.parse::<i64>().is_ok())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Moodle's only username index is (mnethostid, username): the hosts narrow it.
        let hosts = if field == UserField::Username && !wanted.is_empty() {
            self.mnet_host_ids(conn)?
        } else {
            Vec::new()
        };
        let mut found: Vec<User> = Vec::new();
        // 5 000 values a statement: an all-user call of a large site is one or two statements,
        // under every backend's limit of bound values (SQLite 32 766, MySQL and PostgreSQL 65 535).
        for chunk in wanted.chunks(5000) {
            let mut binds = Vec::with_capacity(chunk.len() + 1);
            let mut placeholders = Vec::with_capacity(chunk.len());
            for value in chunk {
                binds.push(match field {
                    UserField::Id => Bind::Int(value.parse().unwrap_or_default()),
                    _ => Bind::Text((*value).to_owned()),
                });
                placeholders.push(format!("${}", binds.len()));
            }
            let hosts_cond = if field == UserField::Username {
                binds.push(Bind::IntList(hosts.clone()));
                format!(
                    "{} AND ",
                    query::in_list(query::backend(conn), "mnethostid", binds.len())
                )
            } else {
                String::new()
            };
            let rows: Vec<RawUser> = query::load(
                conn,
                &format!(
                    "SELECT {USER_COLUMNS} FROM {} WHERE {hosts_cond}{column} IN ({}) \
                     AND deleted = 0",
                    self.t("user"),
                    placeholders.join(", ")
                ),
                binds,
            )?;
            found.extend(rows.into_iter().map(User::from));
        }
        // The lowest id per value, compared exactly (MySQL's collation matched more).
        let key = |u: &User| -> String {
            match field {
                UserField::Id => u.id.to_string(),
                UserField::Username => u.username.clone(),
                UserField::IdNumber => u.idnumber.clone(),
                UserField::Email => u.email.clone(),
            }
        };
        let mut best: std::collections::HashMap<String, User> = std::collections::HashMap::new();
        for user in found {
            let k = key(&user);
            match best.get(&k) {
                Some(b) if b.id <= user.id => {}
                _ => {
                    best.insert(k, user);
                }
            }
        }
        Ok(values
            .iter()
            .map(|v| {
                let v = match field {
                    // "007" names user 7, as `find_user` reads it.
                    UserField::Id => v.parse::<i64>().map(|i| i.to_string()).unwrap_or_default(),
                    _ => v.clone(),
                };
                best.get(&v).cloned()
            })
            .collect())
    }

    /// The users with an active enrolment in `courseid` (E6: both the user_enrolments row and
    /// its enrol instance have status 0), not deleted, by last name, first name and id. Read
    /// through the enrolments of one course, never the whole user table.
    pub fn enrolled_users(
        &self,
        conn: &mut DbConnection,
        courseid: i64,
    ) -> Result<Vec<User>, SourceError> {
        let rows: Vec<RawUser> = query::load(
            conn,
            &format!(
                "SELECT {USER_COLUMNS} FROM {} WHERE deleted = 0 AND id IN \
                 (SELECT ue.userid FROM {} ue JOIN {} e ON e.id = ue.enrolid \
                 WHERE e.courseid = $1 AND ue.status = 0 AND e.status = 0) \
                 ORDER BY lastname, firstname, id",
                self.t("user"),
                self.t("user_enrolments"),
                self.t("enrol")
            ),
            vec![Bind::Int(courseid)],
        )?;
        Ok(rows.into_iter().map(Into::into).collect())
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
        // Moodle's only username index is (mnethostid, username), so the lookup goes host by
        // host: the local host's account first, then the lowest id among the other hosts.
        if let Some(local) = self.local_mnet_host_id(conn)?
            && let Some(user) = self.find_mnet_user(conn, username, local)?
        {
            return Ok(Some(user));
        }
        let hosts = self.mnet_host_ids(conn)?;
        self.first_by_username(conn, username, &hosts)
    }

    /// Every `mnet_host` id, deleted hosts included: their users keep their accounts.
    fn mnet_host_ids(&self, conn: &mut DbConnection) -> Result<Vec<i64>, SourceError> {
        Ok(self.mnet_hosts(conn)?.into_iter().map(|h| h.id).collect())
    }

    /// The non-deleted user with the lowest id among those named `username` on any of `hosts`.
    /// One indexed lookup per host (a site has a handful): `username = ?` alone cannot use
    /// `(mnethostid, username)` and would read the whole user table.
    fn first_by_username(
        &self,
        conn: &mut DbConnection,
        username: &str,
        hosts: &[i64],
    ) -> Result<Option<User>, SourceError> {
        let mut best: Option<User> = None;
        for &host in hosts {
            if let Some(user) = self.find_mnet_user(conn, username, host)?
                && best.as_ref().is_none_or(|b| user.id < b.id)
            {
                best = Some(user);
            }
        }
        Ok(best)
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
}
